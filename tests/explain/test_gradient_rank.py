"""Fig 10's identities on a tiny ResNet-18 at 16 px (random init, float64).

DirectCLR: z = r[:, :d0], so ∂L/∂r is zero beyond column d0 and its rank is d0 exactly; the
2-layer projector's ∂L/∂r is full up to the two rows its BatchNorms remove (one per view);
∂L/∂h, one residual block below r, exceeds d0 once the block's residual branch passes
gradient. With zero_init_residual (the paper's init) the branch's last BN is zero, so at
initialisation ∂L/∂h has DirectCLR's rank d0 too: only the skip connection carries gradient.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from dimcollapse.explain import gradient_spectra, numerical_rank, singular_values
from dimcollapse.losses import LOSSES
from dimcollapse.models import Encoder, build_backbone, build_projector

N, D0 = 8, 4  # images per view (16 rows), DirectCLR's sub-vector


def _encoder(projector: str, *, stem: str = "cifar", live_residual: bool = True) -> Encoder:
    backbone = build_backbone("resnet18", stem=stem, seed=0)
    if live_residual:  # a trained network's last BNs are not zero: give the branches gradient
        gen = torch.Generator().manual_seed(3)
        for block in (m for m in backbone.modules() if hasattr(m, "bn2")):
            with torch.no_grad():
                block.bn2.weight.copy_(1 + 0.2 * torch.randn(block.bn2.weight.shape,
                                                             generator=gen))
    proj = build_projector(projector, 512, d0=D0, hidden_dim=64, out_dim=32, seed=0)
    return Encoder(backbone, proj).double()


def _views(size: int = 16):
    gen = torch.Generator().manual_seed(1)
    return tuple(torch.randn(N, 3, size, size, generator=gen, dtype=torch.float64)
                 for _ in range(2))


LOSS = functools.partial(LOSSES["infonce"], temperature=0.1, normalize=True)


def test_singular_values_and_rank_against_a_built_matrix():
    u, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 10)))
    v, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 6)))
    s = np.array([5.0, 2.0, 1.0, 1e-3, 1e-9, 0.0])
    m = u[:, :6] @ np.diag(s) @ v.T
    got = singular_values(torch.from_numpy(m))
    np.testing.assert_allclose(got[:5], s[:5], rtol=1e-6, atol=1e-14)
    assert numerical_rank(got) == 4  # 1e-9 < 1e-6 x 5
    assert numerical_rank(got, rtol=1e-12) == 5
    assert numerical_rank(np.zeros(3)) == 0


@pytest.mark.parametrize("stem", ["cifar", "imagenet"])  # 2x2 and 1x1 maps in layer4
def test_directclr_grad_r_has_rank_d0_exactly_and_grad_h_more(stem):
    s = gradient_spectra(_encoder("directclr", stem=stem), LOSS, *_views())
    assert s.rows == 2 * N and s.r_dim == 512
    assert s.rank_r == D0
    assert np.all(s.sv_r[D0:] == 0.0)  # exact zeros, not small values: columns d0.. are 0
    assert s.rank_h > D0
    assert s.rank_h == 2 * N  # full: min(2N, C)
    if stem == "cifar":
        assert s.h_shape == (512, 2, 2) and s.positions == [(0, 0), (0, 1), (1, 0), (1, 1)]
        assert all(numerical_rank(p) > D0 for p in s.sv_h_positions)
    else:
        assert s.h_shape == (512, 1, 1) and s.positions == []


def test_mlp_projector_grad_r_is_full_but_the_two_batchnorm_rows():
    s = gradient_spectra(_encoder("mlp"), LOSS, *_views())
    # BatchNorm (train mode) makes each view's input gradient sum to zero over its rows.
    assert s.rank_r == 2 * N - 2
    assert s.rank_r > D0


def test_no_projector_grad_r_is_full():
    s = gradient_spectra(_encoder("none"), LOSS, *_views())
    assert s.rank_r == 2 * N


def test_at_zero_init_residual_only_the_skip_carries_gradient():
    s = gradient_spectra(_encoder("directclr", live_residual=False), LOSS, *_views())
    assert s.rank_r == D0 and s.rank_h == D0


def test_grad_r_equals_autograd_reference_and_leaves_parameter_grads_alone():
    enc = _encoder("directclr")
    v1, v2 = _views()
    s = gradient_spectra(enc, LOSS, v1, v2)
    assert all(p.grad is None for p in enc.parameters())
    # slow reference: r as leaves, z = r[:, :d0], the loss by hand
    r1 = enc.backbone(v1).detach().requires_grad_()
    r2 = enc.backbone(v2).detach().requires_grad_()
    q1 = torch.nn.functional.normalize(r1[:, :D0], dim=1)
    q2 = torch.nn.functional.normalize(r2[:, :D0], dim=1)
    logits = q1 @ q2.T / 0.1
    idx = torch.arange(N)
    loss = 0.5 * (torch.nn.functional.cross_entropy(logits, idx)
                  + torch.nn.functional.cross_entropy(logits.T, idx))
    g1, g2 = torch.autograd.grad(loss, [r1, r2])
    ref = np.linalg.svd(torch.cat([g1, g2]).numpy(), compute_uv=False)
    np.testing.assert_allclose(s.sv_r, ref, rtol=1e-9, atol=1e-15)
    assert s.loss == pytest.approx(float(loss.detach()), rel=1e-12)
