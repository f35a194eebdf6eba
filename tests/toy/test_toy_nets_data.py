"""Batched linear stacks (manual backward, padding, inits) and the seeded view batches."""

from __future__ import annotations

import pytest
import torch

from dimcollapse.toy import data
from dimcollapse.toy.nets import LinearStack, init_layers
from dimcollapse.toy.train import gradients

F64 = torch.float64


def _views(r: int, b: int = 16, d: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(r, b, d, generator=g, dtype=F64)
    return x + 0.3 * torch.randn(r, b, d, generator=g, dtype=F64), \
        x + 0.3 * torch.randn(r, b, d, generator=g, dtype=F64)


@pytest.mark.parametrize("loss", ["paper", "official"])
def test_manual_backward_equals_autograd_for_mixed_depths_and_relu(loss):
    depth = [1, 2, 3, 3, 2]
    relu = [False, True, False, True, True]
    net = LinearStack(init_layers([0, 1, 2, 3, 4], 3, 16, "default", F64), depth, relu)
    x1, x2 = _views(5)
    manual = gradients(net, x1, x2, loss, "mean")
    auto = gradients(net, x1, x2, loss, "mean", autograd=True)
    for m, a in zip(manual, auto, strict=True):
        torch.testing.assert_close(m, a, rtol=1e-10, atol=1e-13)


def test_padded_runs_compute_the_shorter_network_and_keep_identity_layers():
    layers = init_layers([7, 7], 4, 16, "spread", F64)
    net = LinearStack(layers, depth=[2, 4], relu=[True, True])
    x = torch.randn(2, 10, 16, dtype=F64)
    z = net.forward(x)
    w1, w2 = layers[0][0], layers[1][0]
    torch.testing.assert_close(z[0], torch.relu(x[0] @ w1.T) @ w2.T)
    grads = gradients(net, *_views(2), "paper")
    net.sgd_step(grads, torch.full((2, 1, 1), 0.1, dtype=F64))
    eye = torch.eye(16, dtype=F64)
    assert torch.equal(net.weights[2][0], eye) and torch.equal(net.weights[3][0], eye)
    assert not torch.equal(net.weights[3][1], layers[3][1])  # the deep run's layers train


def test_inits_have_the_stated_spectra_and_share_layers_across_depths():
    s = torch.linalg.svdvals(init_layers([0], 1, 16, "spread", F64)[0][0])
    torch.testing.assert_close(s, torch.exp(-0.35 * torch.arange(16, dtype=F64)))
    q = init_layers([0], 1, 16, "orthogonal", F64)[0][0]
    torch.testing.assert_close(q @ q.T, torch.eye(16, dtype=F64), rtol=0, atol=1e-12)
    d = init_layers([0], 1, 16, "default", F64)[0][0]
    assert float(d.abs().max()) <= 0.25
    a, b = init_layers([3, 3, 4], 4, 16, "spread", F64), init_layers([3], 2, 16, "spread", F64)
    assert torch.equal(a[1][0], b[1][0]) and torch.equal(a[0][1], a[0][0])
    assert not torch.equal(a[0][2], a[0][0])


def test_batches_are_without_replacement_per_epoch_and_noise_hits_only_dims_8_to_15():
    amp = torch.stack([data.strong_aug_amplitude(2.0)])
    vb = data.ViewBatches([0], amp, n_samples=1000, batch_size=100, dtype=F64)
    seen = []
    for _ in range(10):
        x1, x2 = vb.next()
        torch.testing.assert_close(x1[0, :, :8], x2[0, :, :8], rtol=0, atol=0)
        seen.append(x1[0, :, 0])
    clean = vb.streams[0].data[:, 0]
    # one epoch: every sample exactly once (clean dim 0 identifies the sample)
    assert torch.equal(torch.sort(torch.cat(seen)).values, torch.sort(clean).values)
    diff = torch.cat([(a - b)[0, :, 8:] for a, b in (vb.next() for _ in range(20))])
    assert float(diff.var()) == pytest.approx(2 * 2.0**2, rel=0.05)  # Var(x' - x) = 2 k^2


def test_runs_with_equal_seeds_share_streams_and_a_batched_run_equals_the_run_alone():
    amp = torch.stack([data.uniform_amplitude(a) for a in (0.1, 0.5, 0.1)])
    together = data.ViewBatches([0, 0, 5], amp, dtype=F64)
    alone = data.ViewBatches([5], amp[2:], dtype=F64)
    for _ in range(120):  # crosses a chunk boundary
        t1, _ = together.next()
        a1, _ = alone.next()
        assert torch.equal(t1[2], a1[0])
    assert not torch.equal(t1[0], t1[2])


def test_a_short_stream_is_the_prefix_of_a_long_one():
    amp = data.strong_aug_amplitude(1.0)[None]
    a = data.ViewBatches([1], amp)
    b = data.ViewBatches([1], amp)
    first = [a.next()[1] for _ in range(150)]
    second = [b.next()[1] for _ in range(150)]
    assert all(torch.equal(u, v) for u, v in zip(first, second, strict=True))


def test_derived_seeds_differ_by_stream_and_seed():
    assert data.derive_seed(0, "noise") != data.derive_seed(0, "data")
    assert data.derive_seed(0, "noise") != data.derive_seed(1, "noise")
    assert data.derive_seed(0, "noise") == data.derive_seed(0, "noise")


def test_embedding_spectra_are_eqn1_on_raw_z_per_run():
    import numpy as np

    from dimcollapse.toy.measure import embedding_spectra

    z = torch.randn(2, 300, 5, generator=torch.Generator().manual_seed(0), dtype=F64) * 3
    got = embedding_spectra(z)
    for r in range(2):
        want = np.sort(np.linalg.eigvalsh(np.cov(z[r].numpy().T, ddof=0)))[::-1]
        np.testing.assert_allclose(got[r], want, rtol=1e-10)
