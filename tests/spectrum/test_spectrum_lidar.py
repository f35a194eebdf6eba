"""LiDAR (Thilak et al. 2024): slow reference from the formula, hand-computed cases, invariance
to invertible linear maps (and where delta breaks it), streaming == one-shot, bad input."""

import math

import numpy as np
import pytest

from dimcollapse.errors import UserError
from dimcollapse.spectrum import (
    LIDAR_DELTA,
    LIDAR_EPS,
    LidarAccumulator,
    lidar,
    lidar_scatter,
)


def ref_lidar(views, delta=LIDAR_DELTA, eps=LIDAR_EPS):
    """Loops over samples and views for the class means, Sigma_b (1/(n-1)) and Sigma_w
    (1/(n(q-1)) + delta I); the eigenvalues of Sigma_w^{-1/2} Sigma_b Sigma_w^{-1/2} taken as
    those of the similar matrix Sigma_w^{-1} Sigma_b (general eigensolver, no square root)."""
    x = np.asarray(views, dtype=np.float64)
    n, q, d = x.shape
    means = [sum(x[i, j] for j in range(q)) / q for i in range(n)]
    grand = sum(means) / n
    sb = sum(np.outer(m - grand, m - grand) for m in means) / (n - 1)
    sw = np.zeros((d, d))
    for i in range(n):
        for j in range(q):
            sw += np.outer(x[i, j] - means[i], x[i, j] - means[i])
    sw = sw / (n * (q - 1)) + delta * np.eye(d)
    lam = np.linalg.eigvals(np.linalg.solve(sw, sb)).real
    lam = [max(float(v), 0.0) for v in lam]
    total = sum(lam)
    h = 0.0
    for v in lam:
        p = v / total + eps
        h -= p * math.log(p)
    return math.exp(h)


def views_data(rng, n, q, d, *, signal=2.0, noise=0.5, offset=1.0):
    """n samples with anisotropic means and q noisy views each. Shape (n, q, d)."""
    means = rng.standard_normal((n, d)) * signal * np.exp(-0.2 * np.arange(d)) + offset
    return means[:, None, :] + noise * rng.standard_normal((n, q, d))


def axis_cluster_views(d, *, k, a=3.0, sigma=0.2):
    """Exact construction: 2k samples with means +-a e_j (j < k); each sample has q = 2d views
    mu +- sigma e_m (m < d), so its views average exactly to mu and Sigma_w is isotropic."""
    means = [s * a * np.eye(d)[j] for j in range(k) for s in (1.0, -1.0)]
    offsets = [s * sigma * np.eye(d)[m] for m in range(d) for s in (1.0, -1.0)]
    return np.array([[mu + o for o in offsets] for mu in means])


def entropy_rank(p):
    return math.exp(-sum(v * math.log(v) for v in p))


def test_lidar_matches_reference():
    rng = np.random.default_rng(80)
    for n, q, d in [(30, 4, 6), (12, 3, 20), (50, 8, 10)]:
        v = views_data(rng, n, q, d)
        assert lidar(v) == pytest.approx(ref_lidar(v), rel=1e-9)
        assert lidar(v, delta=0.3, eps=1e-3) == pytest.approx(ref_lidar(v, 0.3, 1e-3), rel=1e-9)


def test_lidar_scatter_denominators():
    v = axis_cluster_views(4, k=4, a=3.0, sigma=0.2)  # n = 8, q = 8
    sb, sw = lidar_scatter(v, delta=0.0)
    # Sigma_b = 2 a^2 I / (n - 1); Sigma_w = 2 sigma^2 I / (q - 1) (per sample: sum = 2 sigma^2 I)
    np.testing.assert_allclose(sb, 2 * 9.0 / 7 * np.eye(4), atol=1e-14)
    np.testing.assert_allclose(sw, 2 * 0.04 / 7 * np.eye(4), atol=1e-15)


def test_lidar_golden_rank_one_and_full():
    d, eps = 5, LIDAR_EPS
    # means on one axis: Sigma_lidar has one nonzero eigenvalue -> p = (1 + eps, eps, ...)
    one = lidar(axis_cluster_views(d, k=1))
    assert one == pytest.approx(entropy_rank([1 + eps] + [eps] * (d - 1)), rel=1e-10)
    assert one == pytest.approx(1.0, abs=1e-6)
    # means on all d axes, isotropic within: Sigma_lidar ~ I -> p = 1/d + eps -> ~ d
    full = lidar(axis_cluster_views(d, k=d))
    assert full == pytest.approx(entropy_rank([1 / d + eps] * d), rel=1e-10)
    assert full == pytest.approx(d, rel=1e-6)


def test_lidar_separated_clusters_vs_identical_clusters():
    rng = np.random.default_rng(81)
    n, q, d, k = 200, 6, 8, 2
    noise = 0.05 * rng.standard_normal((n, q, d))
    means = np.zeros((n, d))
    means[:, :k] = 10.0 * rng.standard_normal((n, k))  # samples differ along k directions only
    along_k = lidar(means[:, None, :] + noise)
    assert 1.9 < along_k < 2.1
    means_all = 10.0 * rng.standard_normal((n, d))
    assert lidar(means_all[:, None, :] + noise) > 0.95 * d
    # pitfall kept as documented: no sample signal at all also scores near d (Sigma_lidar ~ I/q)
    assert lidar(rng.standard_normal((n, q, d))) > 0.9 * d
    # identical clusters: every sample has the same views -> Sigma_b = 0 (to rounding of the
    # grand mean), LiDAR undefined, in memory and streaming
    same = np.broadcast_to(noise[0] + 3.0, (n, q, d))
    with pytest.raises(ValueError, match="undefined"):
        lidar(same)
    acc = LidarAccumulator(d)
    acc.update(same[:77])
    acc.update(same[77:])
    with pytest.raises(ValueError, match="undefined"):
        acc.lidar()
    # ... while a spread of 1e-9 of the norm is real signal and measured
    tiny = same + 1e-9 * rng.standard_normal((n, 1, d))
    assert lidar(tiny) > 1.0


def test_lidar_invariant_to_invertible_linear_map():
    rng = np.random.default_rng(82)
    n, q, d = 80, 5, 6
    v = views_data(rng, n, q, d, noise=1.0)
    a = rng.standard_normal((d, d)) + 3 * np.eye(d)  # invertible, moderately conditioned
    assert np.linalg.cond(a) < 50
    mapped = v @ a
    # exact up to rounding without the ridge ...
    assert lidar(mapped, delta=0.0) == pytest.approx(lidar(v, delta=0.0), rel=1e-9)
    # ... to O(delta / eigenvalues of Sigma_w) with it (Sigma_w ~ 1 here)
    assert lidar(mapped) == pytest.approx(lidar(v), rel=1e-3)
    # delta is absolute: shrinking anisotropic embeddings until Sigma_w ~ delta changes LiDAR
    assert abs(lidar(1e-3 * mapped) - lidar(mapped)) > 0.1 * lidar(mapped)


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(83)
    v = views_data(rng, 137, 4, 9, offset=5.0)
    want = lidar(v)
    acc = LidarAccumulator(9)
    for s, e in [(0, 1), (1, 40), (40, 41), (41, 100), (100, 137)]:
        acc.update(v[s:e])
    assert acc.n == 137
    assert acc.lidar() == pytest.approx(want, rel=1e-12)
    # merged from two accumulators, in either order
    left, right = LidarAccumulator(9), LidarAccumulator(9)
    left.update(v[:60])
    right.update(v[60:])
    assert left.merge_(right).lidar() == pytest.approx(want, rel=1e-12)
    first, second = LidarAccumulator(9), LidarAccumulator(9)
    first.update(v[:60])
    second.update(v[60:])
    assert second.merge_(first).lidar() == pytest.approx(want, rel=1e-12)
    # an empty accumulator merges as a no-op and takes the other's state
    assert LidarAccumulator(9).merge_(left).lidar() == pytest.approx(want, rel=1e-12)
    sb, sw = lidar_scatter(v)
    got_b, got_w = acc.scatter()
    np.testing.assert_allclose(got_b, sb, rtol=1e-12, atol=1e-12 * np.abs(sb).max())
    np.testing.assert_allclose(got_w, sw, rtol=1e-12, atol=1e-12 * np.abs(sw).max())


def test_torch_input_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(84)
    v = views_data(rng, 40, 3, 5).astype(np.float32)
    t = torch.from_numpy(v)
    assert lidar(t) == pytest.approx(lidar(v), rel=1e-12)
    acc = LidarAccumulator(5)
    acc.update(t[:17])
    acc.update(v[17:])  # numpy after torch: same CPU state
    assert acc.lidar() == pytest.approx(lidar(v), rel=1e-12)
    acc_b = LidarAccumulator(5)
    acc_b.update(t.to(torch.bfloat16))  # any float dtype is read in float64
    assert acc_b.n == 40


def test_torch_backend_equals_numpy_backend():
    pytest.importorskip("torch")
    rng = np.random.default_rng(87)
    v = views_data(rng, 70, 5, 6, offset=4.0)
    want = lidar(v)
    acc = LidarAccumulator(6, backend="torch")  # the CUDA code path's arithmetic, on the CPU
    acc.update(v[:33])
    acc.update(v[33:])
    assert acc._means.ops.name == "torch"
    assert acc.lidar() == pytest.approx(want, rel=1e-12)
    numpy_acc = LidarAccumulator(6)
    numpy_acc.update(v[:20])
    torch_acc = LidarAccumulator(6, backend="torch")
    torch_acc.update(v[20:])
    assert numpy_acc.merge_(torch_acc).lidar() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("shape", [(10, 4), (10, 1, 4)])
def test_lidar_rejects_bad_views(shape):
    with pytest.raises(UserError):
        lidar(np.ones(shape))


def test_lidar_needs_two_samples():
    with pytest.raises(UserError, match="n >= 2"):
        lidar(np.random.default_rng(0).standard_normal((1, 3, 4)))
    acc = LidarAccumulator(4)
    acc.update(np.random.default_rng(0).standard_normal((1, 3, 4)))
    with pytest.raises(ValueError, match="2 samples"):
        acc.lidar()


def test_accumulator_rejects_inconsistent_batches():
    rng = np.random.default_rng(85)
    acc = LidarAccumulator(4)
    acc.update(rng.standard_normal((5, 3, 4)))
    with pytest.raises(UserError, match="q=2"):
        acc.update(rng.standard_normal((5, 2, 4)))
    with pytest.raises(UserError, match="d=5"):
        acc.update(rng.standard_normal((5, 3, 5)))
    other = LidarAccumulator(4, q=2)
    other.update(rng.standard_normal((5, 2, 4)))
    with pytest.raises(UserError, match="q=2"):
        acc.merge_(other)
    with pytest.raises(UserError, match="same settings"):
        acc.merge_(LidarAccumulator(4, delta=1e-3))
    with pytest.raises(UserError):
        LidarAccumulator(4, q=1)
    with pytest.raises(UserError):
        lidar(rng.standard_normal((5, 3, 4)), delta=-1.0)


def _ddp_views():
    return views_data(np.random.default_rng(86), 90, 4, 7, offset=2.0)


def _ddp_worker(rank, world, init_file, out_dir):
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    v = _ddp_views()
    shard = v[:25] if rank == 0 else v[25:]  # unequal shards
    acc = LidarAccumulator(7)
    acc.update(torch.from_numpy(shard[:10]))
    acc.update(shard[10:])
    acc.all_reduce_()
    np.save(f"{out_dir}/rank{rank}.npy", np.array([acc.lidar(), acc.n]))
    dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.slow
def test_two_process_all_reduce_equals_one_shot(tmp_path):
    mp = pytest.importorskip("torch.multiprocessing")
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    want = lidar(_ddp_views())
    for rank in (0, 1):
        value, n = np.load(tmp_path / f"rank{rank}.npy")
        assert n == 90
        assert value == pytest.approx(want, rel=1e-12)
