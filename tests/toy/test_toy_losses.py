"""The toy losses and their closed-form gradients against slow loop references (SPEC §2)."""

from __future__ import annotations

import pytest
import torch
import toyref as ref

from dimcollapse.toy import losses

F64 = torch.float64


def _pair(seed: int, n: int = 9, d: int = 5, noise: float = 0.4, scale: float = 0.7):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=F64) * scale
    zp = z + noise * torch.randn(n, d, generator=g, dtype=F64)
    return z, zp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_matches_loop_reference_and_rows_sum_to_one(seed):
    z, zp = _pair(seed)
    a = losses.paper_alpha(z, zp)
    torch.testing.assert_close(a, ref.alpha(z, zp), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(a.sum(-1), torch.ones(len(z), dtype=F64), rtol=0, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_loss_matches_eqn2_loops(seed):
    z, zp = _pair(seed)
    assert float(losses.paper_loss(z, zp, "sum")) == pytest.approx(ref.paper_loss(z, zp),
                                                                    rel=1e-12)
    assert float(losses.paper_loss(z, zp, "mean")) == pytest.approx(
        ref.paper_loss(z, zp) / len(z), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_grad_formulas_match_loop_reference(seed):
    z, zp = _pair(seed)
    gz, gzp = losses.paper_loss_grad(z, zp, "sum")
    rz, rzp = ref.paper_grads(z, zp)
    torch.testing.assert_close(gz, rz, rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(gzp, rzp, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("loss", ["paper", "official"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_closed_form_grads_equal_autograd_batched(loss, reduction):
    g = torch.Generator().manual_seed(3)
    z1 = torch.randn(3, 12, 6, generator=g, dtype=F64).requires_grad_(True)
    z2 = (z1.detach() + 0.3 * torch.randn(3, 12, 6, generator=g, dtype=F64)).requires_grad_(True)
    val = losses.LOSSES[loss].value(z1, z2, reduction)
    assert val.shape == (3,)
    a1, a2 = torch.autograd.grad(val.sum(), (z1, z2))
    f1, f2 = losses.LOSSES[loss].grad(z1.detach(), z2.detach(), reduction)
    torch.testing.assert_close(f1, a1, rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(f2, a2, rtol=1e-11, atol=1e-13)


def test_official_loss_is_cross_entropy_of_scaled_logits():
    z1, z2 = _pair(4, n=10, d=4, scale=1.0)
    want = torch.nn.functional.cross_entropy(z1 @ z2.T / 0.1, torch.arange(10))
    assert float(losses.official_loss(z1, z2)) == pytest.approx(float(want), rel=1e-12)
    assert float(losses.official_loss(z1, z2)) == pytest.approx(ref.official_loss(z1, z2),
                                                                rel=1e-12)


def test_official_loss_equals_library_infonce_unnormalised_one_direction():
    infonce = pytest.importorskip("dimcollapse.losses").infonce
    z1, z2 = _pair(5, n=16, d=8, scale=1.0)
    want = infonce(z1, z2, temperature=0.1, normalize=False, symmetric=False)
    assert float(losses.official_loss(z1, z2)) == pytest.approx(float(want), rel=1e-10)


def test_bad_reduction_is_rejected():
    z, zp = _pair(0)
    with pytest.raises(ValueError, match="reduction"):
        losses.paper_loss(z, zp, "avg")
