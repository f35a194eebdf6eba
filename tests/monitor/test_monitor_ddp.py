"""CollapseMonitor under 2 gloo processes: compute() equals one process over all samples, and
nothing but compute() talks to the other rank."""

import json

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from dimcollapse import CollapseMonitor

N, D, H = 300, 20, 16
METRICS = ("rankme", "alpha_req", "collapsed_dims", "normalized_std")


def _data():
    rng = np.random.default_rng(31)
    return (rng.standard_normal((N, D)) * np.exp(-0.2 * np.arange(D)) + 1.5)


def _model():
    torch.manual_seed(5)
    return torch.nn.Sequential(torch.nn.Linear(D, H, dtype=torch.float64), torch.nn.Tanh())


def _feed(monitor, rows, model):
    monitor.watch(model, {"h": "1"})
    for s in range(0, rows.shape[0], 32):
        batch = rows[s:s + 32]
        monitor.update("z", batch)
        monitor.update("t", torch.from_numpy(batch).float())
        model(torch.from_numpy(batch))
    monitor.unwatch()


def _worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    calls = {"n": 0}
    for fn in ("all_reduce", "broadcast", "all_gather_object", "all_gather", "barrier"):
        original = getattr(dist, fn)

        def counted(*a, _original=original, **k):
            calls["n"] += 1
            return _original(*a, **k)
        setattr(dist, fn, counted)
    z = _data()
    shard = z[:110] if rank == 0 else z[110:]  # unequal shards
    monitor = CollapseMonitor(metrics=METRICS)
    _feed(monitor, shard, _model())
    before = calls["n"]
    result = monitor.compute()
    out = {"collectives_before_compute": before, "collectives_in_compute": calls["n"] - before,
           "result": result}
    lonely = CollapseMonitor()
    lonely.update("z", shard)
    if rank == 0:
        lonely.update("only_rank0", shard)
    try:
        lonely.compute()
        out["mismatch"] = None
    except Exception as err:  # noqa: BLE001 - recorded for the test to check
        out["mismatch"] = f"{type(err).__name__}: {err}"
    with open(f"{out_dir}/rank{rank}.json", "w") as fh:
        json.dump(out, fh)
    dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.slow
def test_two_process_compute_equals_one_process_and_syncs_only_in_compute(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    one = CollapseMonitor(metrics=METRICS)
    _feed(one, _data(), _model())
    want = one.compute()
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["collectives_before_compute"] == 0
        assert got["collectives_in_compute"] > 0
        assert set(got["result"]) == {"z", "t", "h"}
        for name, metrics in want.items():
            assert got["result"][name]["n"] == N
            for key in METRICS:
                assert metrics[key] is not None
                assert got["result"][name][key] == pytest.approx(metrics[key], rel=1e-9), \
                    (rank, name, key)
        assert got["mismatch"].startswith("UserError: CollapseMonitor.compute(): the ranks "
                                          "pooled different names")
