"""Training monitors: which steps feed the spectrum, and what it reports."""

import numpy as np
import pytest
import torch

from dimcollapse.spectrum import collapsed_dims, covariance_spectrum, rankme
from dimcollapse.train.hooks import SpectrumHook, default_window_steps, probe_loss_and_correct


def _schedule(every, window, total):
    hook = SpectrumHook(every_steps=every, window_steps=window, total_steps=total,
                        device=torch.device("cpu"))
    pooled = [c for c in range(1, total + 1) if hook.in_window(c)]
    measured = [c for c in range(1, total + 1) if hook.is_measurement(c)]
    return pooled, measured


def test_window_is_the_steps_just_before_each_measurement_and_the_end():
    pooled, measured = _schedule(every=10, window=3, total=25)
    assert measured == [10, 20, 25]
    assert pooled == [8, 9, 10, 18, 19, 20, 23, 24, 25]
    assert _schedule(every=0, window=3, total=5) == ([], [])
    assert _schedule(every=4, window=9, total=8)[0] == list(range(1, 9))  # capped at `every`


def test_default_window_pools_twice_the_dimension():
    assert default_window_steps(512, 256, 100) == 4
    assert default_window_steps(2048, 4096, 1000) == 1
    assert default_window_steps(512, 16, 10) == 10


def test_summary_matches_the_spectrum_of_the_pooled_rows():
    gen = torch.Generator().manual_seed(0)
    hook = SpectrumHook(every_steps=2, window_steps=2, total_steps=2, device=torch.device("cpu"))
    # z has rank 3 in 8 dims: 5 collapsed dimensions.
    rs = [torch.randn(40, 6, generator=gen) for _ in range(2)]
    basis = torch.randn(3, 8, generator=gen)
    zs = [torch.randn(40, 3, generator=gen) @ basis for _ in range(2)]
    for r, z in zip(rs, zs, strict=True):
        hook.update(r, z.view(40, 2, 4))  # grouped z is flattened
    out = hook.summary()
    r_all, z_all = torch.cat(rs).double().numpy(), torch.cat(zs).double().numpy()
    assert out["spectrum_samples"] == 80
    assert out["collapsed_dims_z"] == collapsed_dims(covariance_spectrum(z_all, normalize=True))
    assert out["collapsed_dims_z"] == 5 and out["collapsed_dims_r"] == 0
    assert out["rankme_r"] == pytest.approx(rankme(r_all), rel=1e-4)
    assert hook.summary() == {}  # reset after a measurement


def test_probe_loss_and_hits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    target = torch.tensor([0, 1, 1])
    loss, hits = probe_loss_and_correct(logits, target)
    assert hits.item() == 2
    expected = -np.mean([np.log(np.exp(2) / (np.exp(2) + 1)), np.log(np.e / (np.e + 1)),
                         np.log(1 / (np.exp(3) + 1))])
    assert loss.item() == pytest.approx(expected, rel=1e-6)
