"""CollapseMonitor: fed or watching, its schedule, its errors; it never changes training."""

import numpy as np
import pytest
import torch
from torch import nn

import dimcollapse
from dimcollapse import CollapseMonitor
from dimcollapse.errors import UserError
from dimcollapse.spectrum import SpectrumAccumulator
from dimcollapse.train.hooks import SpectrumHook

pytestmark = pytest.mark.usefixtures("one_thread")


def _eigvalsh_reference(rows):
    """Eqn 1 on L2-normalised rows, numpy float64, descending."""
    x = np.asarray(rows, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    x = x - x.mean(axis=0)
    return np.linalg.eigvalsh(x.T @ x / x.shape[0])[::-1]


def _batches(k, n=40, d=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    scale = torch.exp(-0.3 * torch.arange(d, dtype=torch.float64))
    return [(torch.randn(n, d, generator=gen, dtype=torch.float64) * scale + 1.0)
            for _ in range(k)]


def _same(metrics, spectrum, names):
    for name in names:
        assert metrics[name] == pytest.approx(getattr(spectrum, name), rel=1e-12, abs=0)


class Tiny(nn.Module):
    """conv feature map -> avgpool-free trunk -> projector with a tuple output."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.3))
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        f = self.trunk(x)
        return self.head(f.mean(dim=(2, 3)))


class Pair(nn.Module):
    def forward(self, x):
        return x * 2.0, "aux"


def test_update_pools_rows_like_measure_of_all_rows():
    batches = _batches(3)
    monitor = CollapseMonitor(metrics=("rankme", "alpha_req", "collapsed_dims",
                                       "normalized_std"))
    for b in batches:
        monitor.update("z", b)
    got = monitor.compute()["z"]
    allrows = torch.cat(batches)
    want = dimcollapse.measure(allrows)
    _same(got, want, ("rankme", "normalized_std"))
    assert got["collapsed_dims"] == want.collapsed_dims and got["n"] == 120
    ev = monitor.spectra()["z"].eigenvalues
    assert np.abs(ev - _eigvalsh_reference(allrows.numpy())).max() < 1e-12 * ev[0]
    assert monitor.compute()["z"] == got  # compute() does not consume or re-reduce the state
    monitor.reset()
    assert monitor.compute() == {}


def test_every_records_only_every_kth_update():
    batches = _batches(7, seed=1)
    monitor = CollapseMonitor(metrics=("rankme",), every=3)
    for b in batches:
        monitor.update("z", b)
    want = dimcollapse.measure(torch.cat([batches[2], batches[5]]))
    assert monitor.compute()["z"]["n"] == 80
    _same(monitor.compute()["z"], want, ("rankme",))


def test_window_returns_the_last_complete_window():
    batches = _batches(5, seed=2)
    monitor = CollapseMonitor(metrics=("rankme", "collapsed_dims"), window=2)
    monitor.update("z", batches[0])
    assert not monitor.ready() and monitor.compute() == {}  # no complete window yet
    monitor.update("z", batches[1])
    assert monitor.ready()
    _same(monitor.compute()["z"], dimcollapse.measure(torch.cat(batches[:2])), ("rankme",))
    assert not monitor.ready()  # compute() saw this window
    for b in batches[2:]:
        monitor.update("z", b)
    _same(monitor.compute()["z"], dimcollapse.measure(torch.cat(batches[2:4])), ("rankme",))
    both = CollapseMonitor(every=2, window=2)  # windows of recorded updates 2, 4 | 6, 8
    for b in _batches(9, seed=3):
        both.update("z", b)
    assert both.compute()["z"]["n"] == 80


def test_watch_pools_feature_maps_takes_a_tuples_first_tensor_and_unhooks():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("body", Tiny())
    model.add_module("pair", Pair())
    x = torch.randn(30, 3, 5, 5)
    with CollapseMonitor(metrics=("rankme", "normalized_std")) as monitor:
        monitor.watch(model, {"f": "body.trunk.0", "h": "body.head", "p": "pair"})
        model.eval()
        out = model(x)
    assert not any(m._forward_hooks for m in model.modules())  # the context removed the hooks
    model(x)  # not recorded any more
    got = monitor.compute()
    f = model.body.trunk[0](x).mean(dim=(2, 3))
    h = model.body.head(torch.relu(model.body.trunk[0](x)).mean(dim=(2, 3)))
    _same(got["f"], dimcollapse.measure(f.detach()), ("rankme", "normalized_std"))
    _same(got["h"], dimcollapse.measure(h.detach()), ("rankme",))
    _same(got["p"], dimcollapse.measure(out[0].detach()), ("rankme",))
    assert [got[k]["n"] for k in "fhp"] == [30, 30, 30]


def _train(with_monitor: bool, steps=4):
    torch.manual_seed(123)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    monitor = CollapseMonitor(metrics=("rankme", "collapsed_dims"))
    if with_monitor:
        monitor.watch(model, {"f": "trunk", "h": "head"})
    for step in range(steps):
        x = torch.randn(16, 3, 6, 6)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(x).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if with_monitor and step % 2 == 1:
            assert monitor.compute()["h"]["n"] == 16 * (step + 1)
    monitor.unwatch()
    return model.state_dict(), torch.get_rng_state()


def test_watching_never_changes_training_bit_for_bit():
    plain, plain_rng = _train(False)
    watched, watched_rng = _train(True)
    assert plain.keys() == watched.keys()
    for key in plain:
        assert torch.equal(plain[key], watched[key]), key
    assert torch.equal(plain_rng, watched_rng)  # no RNG drawn (the model has dropout)


def test_the_training_hook_gives_exactly_the_accumulators_numbers():
    rs, zs = _batches(2, d=6, seed=4), _batches(2, d=8, seed=5)
    hook = SpectrumHook(every_steps=2, window_steps=2, total_steps=2, device=torch.device("cpu"))
    accs = {k: SpectrumAccumulator(d, normalize=True, device="cpu", precision="float32")
            for k, d in (("r", 6), ("z", 8))}
    for r, z in zip(rs, zs, strict=True):
        hook.update(r, z.view(40, 2, 4))
        accs["r"].update(r.float())
        accs["z"].update(z.float())
    out = hook.summary()
    for key, acc in accs.items():
        s = acc.summary()
        assert out[f"rankme_{key}"] == s.rankme  # exactly: one code path
        assert out[f"collapsed_dims_{key}"] == s.collapsed_dims
    assert out["spectrum_samples"] == 80


def test_numpy_input_and_every_error_message():
    monitor = CollapseMonitor()
    monitor.update("z", np.random.default_rng(0).standard_normal((10, 3)))
    assert monitor.compute()["z"]["n"] == 10
    model = Tiny()
    with pytest.raises(UserError, match=r"no module 'trunk\.9'; did you mean 'trunk\.2'.*"
                                        r"names: trunk, trunk\.0, trunk\.1, trunk\.2, head$"):
        monitor.watch(model, {"f": "trunk.9"})
    big = nn.Sequential(*[nn.Identity() for _ in range(50)])
    with pytest.raises(UserError, match=r"names: 0, 1, .*, 39, \.\.\. \(50 in all\)$"):
        monitor.watch(big, {"f": "avgpool"})
    with pytest.raises(UserError, match="needs a torch.nn.Module"):
        monitor.watch("model", {"f": "trunk"})
    with pytest.raises(UserError, match=r"needs a dict \{monitor name: module name\}"):
        monitor.watch(model, ["trunk"])
    monitor.watch(model, {"f": "trunk"})
    with pytest.raises(UserError, match="'f' is already watched"):
        monitor.watch(model, {"f": "head"})
    with pytest.raises(UserError, match="unknown metric.*'rank_me'.*choose from rankme"):
        CollapseMonitor(metrics=("rank_me",))
    with pytest.raises(UserError, match="every=0; pass an integer >= 1"):
        CollapseMonitor(every=0)
    with pytest.raises(UserError, match="window=0; pass an integer >= 1"):
        CollapseMonitor(window=0)
    with pytest.raises(UserError, match="precision='float16'"):
        CollapseMonitor(precision="float16")
    with pytest.raises(UserError, match="dimension 4 after 3"):
        monitor.update("z", np.ones((5, 4)))
    with pytest.raises(UserError, match="the name must be a non-empty string"):
        monitor.update("", np.ones((5, 4)))
    with pytest.raises(UserError, match="without a tensor"):
        monitor.update("t", ("a", "b"))
    with pytest.raises(UserError, match="not a tensor or array"):
        monitor.update("s", "text")
    one = CollapseMonitor()
    one.update("z", np.ones((1, 3)))
    with pytest.raises(UserError, match="'z' has 1 row; the metrics need at least 2"):
        one.compute()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_updates_never_synchronise_and_match_the_cpu_reference():
    batches = [b.float().cuda() for b in _batches(3, d=32, seed=6)]
    model = nn.Sequential(nn.Linear(32, 16), nn.Tanh()).cuda()
    monitor = CollapseMonitor(metrics=("rankme", "normalized_std"))
    monitor.watch(model, {"h": "1"})
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any host-device sync in update() raises
    try:
        for b in batches:
            monitor.update("z", b)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                model(b)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    got = monitor.compute()
    allrows = torch.cat(batches).cpu()
    want = dimcollapse.measure(allrows)
    for key in ("rankme", "normalized_std"):  # GPU vs CPU float64 sums: rounding only
        assert got["z"][key] == pytest.approx(getattr(want, key), rel=1e-10)
    ev = monitor.spectra()["z"].eigenvalues
    assert np.abs(ev - _eigvalsh_reference(allrows.double().numpy())).max() < 1e-12 * ev[0]
    assert got["h"]["n"] == 120
