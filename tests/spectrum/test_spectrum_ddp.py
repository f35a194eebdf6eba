"""all_reduce_ across 2 gloo processes equals one accumulator over all rows."""

import numpy as np
import pytest
import torch.multiprocessing as mp

from dimcollapse.spectrum import SpectrumAccumulator

N, D = 600, 12


def _data():
    rng = np.random.default_rng(30)
    return (rng.standard_normal((N, D)) * np.exp(-0.3 * np.arange(D)) + 2.0).astype(np.float32)


def _worker(rank, world, init_file, out_dir):
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    z = _data()
    shard = z[rank * 250:(rank + 1) * 250] if rank == 0 else z[250:]  # unequal shards
    results = {}
    for name, kw in {"numpy": {}, "torch": {"backend": "torch"}}.items():
        for normalize in (True, False):
            acc = SpectrumAccumulator(D, normalize=normalize, device="cpu", **kw)
            rows = shard if name == "numpy" else torch.from_numpy(shard)
            for s in range(0, rows.shape[0], 64):
                acc.update(rows[s:s + 64])
            acc.all_reduce_()
            results[f"{name}_{normalize}_ev"] = acc.eigenvalues()
            results[f"{name}_{normalize}_std"] = acc.normalized_std()
            results[f"{name}_{normalize}_rankme"] = np.array([acc.rankme(), acc.n])
    np.savez(f"{out_dir}/rank{rank}.npz", **results)
    dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.slow
def test_two_process_all_reduce_equals_one_process(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    z = _data()
    for rank in (0, 1):
        got = np.load(tmp_path / f"rank{rank}.npz")
        for name in ("numpy", "torch"):
            for normalize in (True, False):
                one = SpectrumAccumulator(D, normalize=normalize)
                one.update(z)
                want = one.eigenvalues()
                ev = got[f"{name}_{normalize}_ev"]
                assert np.abs(ev - want).max() / want[0] < 1e-12
                np.testing.assert_allclose(got[f"{name}_{normalize}_std"],
                                           one.normalized_std(), rtol=1e-10)
                rankme_value, n = got[f"{name}_{normalize}_rankme"]
                assert n == N
                assert rankme_value == pytest.approx(one.rankme(), rel=1e-10)
