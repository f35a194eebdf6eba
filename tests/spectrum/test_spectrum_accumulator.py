"""SpectrumAccumulator: streaming == in memory == loop reference; merging; inputs; precision."""

import numpy as np
import pytest
import torch

from dimcollapse.spectrum import (
    SpectrumAccumulator,
    collapsed_dims,
    covariance_spectrum,
    normalized_std,
    rankme,
)
from dimcollapse.spectrum.moments import Moments


def _acc(z, chunk, **kw):
    acc = SpectrumAccumulator(z.shape[1], **kw)
    for start in range(0, z.shape[0], chunk):
        acc.update(z[start:start + chunk])
    return acc


def _max_rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / np.max(b)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("ddof", [0, 1])
def test_streaming_matches_loop_reference(ref, make_embeddings, normalize, center, ddof):
    rng = np.random.default_rng(10)
    z = make_embeddings(rng, 90, 6, offset=5.0)  # large mean: stresses the centring
    acc = _acc(z, 13, normalize=normalize, center=center)
    want = ref.spectrum(z, normalize=normalize, center=center, ddof=ddof)
    assert _max_rel(acc.eigenvalues(ddof), np.maximum(want, 0)) < 1e-12


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("center", [True, False])
def test_streaming_matches_in_memory_to_1e9(make_embeddings, normalize, center):
    rng = np.random.default_rng(11)
    z = make_embeddings(rng, 3000, 48, offset=10.0, decay=0.15, dtype=np.float32)
    acc = _acc(z, 257, normalize=normalize, center=center)
    want = covariance_spectrum(z, normalize=normalize, center=center)
    ev = acc.eigenvalues()
    assert _max_rel(ev, want) < 1e-9
    # the well-conditioned part also agrees eigenvalue by eigenvalue
    big = want > 1e-6 * want[0]
    np.testing.assert_allclose(ev[big], want[big], rtol=1e-9)


def test_chunking_invariance(make_embeddings):
    rng = np.random.default_rng(12)
    z = make_embeddings(rng, 500, 20, offset=1.0)
    runs = [_acc(z, c, normalize=True).eigenvalues() for c in (1, 7, 64, 500)]
    for ev in runs[1:]:
        assert _max_rel(ev, runs[0]) < 1e-13


def test_merge_equals_one_accumulator_over_all_rows(make_embeddings):
    rng = np.random.default_rng(13)
    z = make_embeddings(rng, 400, 12, offset=4.0)
    for normalize in (True, False):
        whole = _acc(z, 400, normalize=normalize)
        # parts with different first-batch means, hence different shifts
        a = _acc(z[:150] + 0.0, 50, normalize=normalize)
        b = _acc(z[150:] * 1.0, 33, normalize=normalize)
        empty = SpectrumAccumulator(12, normalize=normalize)
        merged = SpectrumAccumulator(12, normalize=normalize).merge_(a).merge_(empty).merge_(b)
        assert merged.n == 400
        assert _max_rel(merged.eigenvalues(), whole.eigenvalues()) < 1e-13
        assert merged.rankme() == pytest.approx(whole.rankme(), rel=1e-12)
        np.testing.assert_allclose(merged.normalized_std(), whole.normalized_std(), rtol=1e-12)


def test_merge_rejects_different_settings():
    a = SpectrumAccumulator(4, normalize=True)
    with pytest.raises(ValueError, match="different settings"):
        a.merge_(SpectrumAccumulator(4, normalize=False))


def test_torch_and_numpy_batches_agree(make_embeddings):
    rng = np.random.default_rng(14)
    z = make_embeddings(rng, 300, 10, offset=2.0, dtype=np.float32)
    from_numpy = _acc(z, 64, normalize=True)
    from_torch = _acc(torch.from_numpy(z), 64, normalize=True)
    assert from_torch.device is None  # CPU tensors go to the numpy (syrk) backend
    np.testing.assert_array_equal(from_torch.eigenvalues(), from_numpy.eigenvalues())
    bf16 = _acc(torch.from_numpy(z).bfloat16(), 64, normalize=True)
    assert _max_rel(bf16.eigenvalues(), from_numpy.eigenvalues()) < 5e-2  # bf16 has 8 bits


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_torch_backend_matches_numpy_backend(make_embeddings, precision):
    """The torch code path (what runs on CUDA) gives the numpy path's numbers."""
    rng = np.random.default_rng(15)
    z = make_embeddings(rng, 700, 24, offset=3.0, dtype=np.float32)
    for normalize in (True, False):
        kw = {"normalize": normalize, "precision": precision}
        t = _acc(torch.from_numpy(z), 100, backend="torch", **kw)
        n = _acc(z, 100, **kw)
        assert t.device == torch.device("cpu")
        tol = 1e-12 if precision == "float64" else 1e-6
        assert _max_rel(t.eigenvalues(), n.eigenvalues()) < tol
        assert t.rankme() == pytest.approx(n.rankme(), rel=1e-10)
        np.testing.assert_allclose(t.normalized_std(), n.normalized_std(), rtol=1e-6)
        merged = _acc(z[:300], 100, **kw).merge_(_acc(torch.from_numpy(z[300:]), 100,
                                                      backend="torch", **kw))
        assert _max_rel(merged.eigenvalues(), n.eigenvalues()) < tol


def test_float32_products_error_is_small(make_embeddings):
    rng = np.random.default_rng(16)
    z = make_embeddings(rng, 12000, 256, offset=1.0, decay=0.02, dtype=np.float32)
    want = covariance_spectrum(z, normalize=True)
    err = _max_rel(_acc(z, 4096, normalize=True, precision="float32").eigenvalues(), want)
    assert err < 1e-6
    assert _max_rel(_acc(z, 4096, normalize=True).eigenvalues(), want) < 1e-12


def test_rankme_uses_the_first_raw_rows(make_embeddings):
    rng = np.random.default_rng(17)
    z = make_embeddings(rng, 1000, 16, offset=1.0)
    acc = _acc(z, 300, normalize=True, raw_max_samples=450)  # limit inside a batch
    assert acc.raw_n == 450
    assert acc.rankme() == pytest.approx(rankme(z[:450]), rel=1e-10)  # raw, not normalised
    everything = _acc(z, 300, normalize=True, raw_max_samples=None)
    assert everything.rankme() == pytest.approx(rankme(z), rel=1e-10)
    off = _acc(z, 300, normalize=True, raw_max_samples=0)
    assert off.rankme() is None and off.alpha_req() is None
    assert off.summary().rankme is None


def test_normalized_std_both_modes(ref, make_embeddings):
    rng = np.random.default_rng(18)
    z = make_embeddings(rng, 200, 8, offset=2.0)
    want = ref.normalized_std(z)
    for normalize in (True, False):
        got = _acc(z, 37, normalize=normalize).normalized_std()
        np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_allclose(normalized_std(z), want, rtol=1e-12)


def test_summary_contents(make_embeddings):
    rng = np.random.default_rng(19)
    z = make_embeddings(rng, 500, 128, decay=0.2)
    acc = _acc(z, 100, normalize=False)
    s = acc.summary(ddof=1, rel_threshold=1e-3).to_dict()  # the keys of spectrum.json
    ev = covariance_spectrum(z, normalize=False, ddof=1)
    assert s["n"] == 500 and s["dim"] == 128 and s["ddof"] == 1
    assert s["normalize"] is False and s["center"] is True and s["threshold"] == 1e-3
    assert _max_rel(s["eigenvalues"], ev) < 1e-12
    assert s["collapsed_dims"] == collapsed_dims(ev, 1e-3)
    assert s["rankme"] == pytest.approx(rankme(z), rel=1e-10)
    assert s["alpha_req_fit"]["points"] == 90 and s["alpha_req_r2"] > 0.9
    assert len(s["normalized_std_per_dim"]) == 128
    assert s["max_rank"] == 128


def test_bad_batches_raise():
    acc = SpectrumAccumulator(4, normalize=True)
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        acc.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="real numbers"):
        acc.update(np.zeros((3, 4), dtype=np.complex64))
    with pytest.raises(ValueError, match="at least"):
        acc.eigenvalues()


def test_moments_rebase_is_exact():
    rng = np.random.default_rng(20)
    x = rng.standard_normal((50, 5)) + 3
    m = Moments(5)
    m.update(x)
    s, g = m.rebased(np.zeros(5))
    np.testing.assert_allclose(s, x.sum(0), rtol=1e-13)
    np.testing.assert_allclose(g, x.T @ x, rtol=1e-13)


def test_summary_record_keys_are_the_spectrum_json_keys_in_order(make_embeddings):
    rng = np.random.default_rng(21)
    s = _acc(make_embeddings(rng, 60, 8), 25, normalize=True).summary()
    assert list(s.to_dict()) == [
        "n", "dim", "normalize", "center", "ddof", "precision", "eigenvalues", "max_rank",
        "unmeasured_dims", "collapsed_dims", "threshold", "rankme", "rankme_eps", "raw_samples",
        "raw_max_samples", "alpha_req", "alpha_req_r2", "alpha_req_fit", "normalized_std",
        "normalized_std_per_dim", "effective_rank", "nesum", "normalized_total_variance",
        "complete_threshold", "collapse"]
    d = s.with_source({"path": "x"}).to_dict()
    assert list(d)[-1] == "source" and d["source"] == {"path": "x"}
    assert list(d["normalized_std"]) == ["mean", "min", "max", "reference_1_over_sqrt_d"]
    assert list(d["alpha_req_fit"]) == ["alpha", "r2", "first_rank", "last_rank", "points"]
    assert isinstance(d["eigenvalues"], list) and d["eigenvalues"] == list(s.eigenvalues)


def test_moments_move_between_backends_exactly():
    from dimcollapse.spectrum.backend import NUMPY, TorchOps

    rng = np.random.default_rng(22)
    x = rng.standard_normal((40, 6)) + 2
    m = Moments(6)
    m.update(x)
    assert m.to(NUMPY) is m  # already there
    t = m.to(TorchOps(torch.device("cpu")))
    assert t is not m and t.to(TorchOps(torch.device("cpu"))) is t
    back = t.to(NUMPY)
    for name in ("shift", "sum", "gram"):
        np.testing.assert_array_equal(getattr(back, name), getattr(m, name))
    with pytest.raises(ValueError, match="backend must be"):
        SpectrumAccumulator(4, normalize=True, backend="jax")
    with pytest.raises(ValueError, match="on the CPU"):
        SpectrumAccumulator(4, normalize=True, backend="numpy", device="cuda:0")
