"""SpectrumAccumulator with its state on CUDA (torch float64) equals the CPU's (numpy): the
eigenvalues to 1e-9 of the largest, the collapsed-dims count exactly, RankMe and alpha-ReQ to
1e-9 relative (on data whose small eigenvalues are well above float64 round-off: their square
roots and logs would amplify it)."""

import numpy as np
import pytest
import torch

from dimcollapse.spectrum import SpectrumAccumulator


@pytest.mark.parametrize("normalize", [True, False])
def test_accumulator_on_cuda_equals_cpu(accel, normalize):
    g = torch.Generator().manual_seed(0)
    # Anisotropic, partly collapsed embeddings: 40 of 128 directions with variance 1e-6 of the
    # largest (collapsed by the 1e-4 threshold, yet far above float64 round-off, so that the
    # metrics are well-conditioned), 88 between 1 and 1e-3.
    basis = torch.linalg.qr(torch.randn(128, 128, generator=g, dtype=torch.float64))[0]
    scales = torch.cat([torch.logspace(0, -1.5, 88, dtype=torch.float64),
                        torch.full((40,), 1e-3, dtype=torch.float64)])
    z = (torch.randn(3000, 128, generator=g, dtype=torch.float64) * scales) @ basis
    z = z.to(torch.float32) + 0.3
    cpu = SpectrumAccumulator(128, normalize=normalize)
    # backend="torch": what runs on CUDA (and what the CPU stand-in then exercises).
    gpu = SpectrumAccumulator(128, normalize=normalize, device=accel, backend="torch")
    for chunk in z.split(700):  # uneven batches, the last one short
        cpu.update(chunk.numpy())
        gpu.update(chunk.to(accel))
    assert gpu.n == cpu.n == 3000
    ec, eg = cpu.eigenvalues(), gpu.eigenvalues()
    assert isinstance(eg, np.ndarray) and eg.dtype == np.float64 and eg.shape == (128,)
    assert np.abs(eg - ec).max() <= 1e-9 * ec[0]
    sc, sg = cpu.summary(), gpu.summary()
    assert sg["collapsed_dims"] == sc["collapsed_dims"] >= 35  # 40 raw, 39 once normalised
    for key in ("rankme", "alpha_req"):
        assert sg[key] == pytest.approx(sc[key], rel=1e-9)
