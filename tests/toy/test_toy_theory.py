"""Lemma 1-2, the official-loss X, alignment measures, and the verify checks (SPEC §2)."""

from __future__ import annotations

import pytest
import torch
import toyref as ref

from dimcollapse.toy import losses, theory, verify

F64 = torch.float64


def _batch(seed: int, n: int, d: int = 6, k: float = 0.8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=F64)
    x1 = x + k * torch.randn(n, d, generator=g, dtype=F64)
    x2 = x + k * torch.randn(n, d, generator=g, dtype=F64)
    w = torch.randn(d, d, generator=g, dtype=F64) / 2
    return w, x1, x2


@pytest.mark.parametrize("seed", [0, 1])
def test_sigma_hats_match_loop_reference(seed):
    w, x, xp = _batch(seed, 8)
    z, zp = x @ w.T, xp @ w.T
    a = ref.alpha(z, zp)
    torch.testing.assert_close(theory.sigma_hat_0(x, a), ref.sigma0(x, a), rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(theory.sigma_hat_1(x, xp, a), ref.sigma1(x, xp, a), rtol=1e-12,
                               atol=1e-13)
    # Lemma 2 as the difference of the two loop references
    torch.testing.assert_close(theory.lemma2_x(x, xp, z, zp),
                               ref.sigma0(x, a) - ref.sigma1(x, xp, a), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("n", [2, 7, 64])
def test_lemma1_identity_is_exact_in_float64(n):
    w, x1, x2 = _batch(n, n)
    wg = w.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(losses.paper_loss(x1 @ wg.T, x2 @ wg.T, "sum"), wg)
    want = -w @ theory.lemma2_x(x1, x2, x1 @ w.T, x2 @ w.T)
    assert float((g - want).norm() / want.norm()) < 1e-12
    # mean reduction: the same identity divided by B
    (gm,) = torch.autograd.grad(losses.paper_loss(x1 @ wg.T, x2 @ wg.T, "mean"), wg)
    torch.testing.assert_close(gm, want / n, rtol=1e-12, atol=1e-14)


def test_official_x_gives_the_official_gradient():
    w, x1, x2 = _batch(5, 32)
    wg = w.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(losses.official_loss(x1 @ wg.T, x2 @ wg.T, "sum"), wg)
    xm = theory.official_x(x1, x2, x1 @ w.T, x2 @ w.T)
    torch.testing.assert_close(xm, xm.T)  # symmetric
    assert float((g + w @ xm).norm() / g.norm()) < 1e-12


def test_x_without_augmentation_term_would_break_lemma1():
    """The identity has teeth: dropping S1 (the augmentation covariance) breaks it."""
    w, x1, x2 = _batch(6, 16, k=1.5)
    wg = w.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(losses.paper_loss(x1 @ wg.T, x2 @ wg.T, "sum"), wg)
    a = losses.paper_alpha(x1 @ w.T, x2 @ w.T)
    wrong = -w @ theory.sigma_hat_0(x1, a)
    assert float((g - wrong).norm() / g.norm()) > 1e-2


def test_alignment_is_identity_for_aligned_weights_and_random_otherwise():
    from dimcollapse.toy.nets import haar_orthogonal

    gen = torch.Generator().manual_seed(0)
    u1, v1, u2 = (haar_orthogonal(16, gen) for _ in range(3))
    s = torch.exp(-0.35 * torch.arange(16, dtype=F64))
    w1 = u1 @ torch.diag(s) @ v1.T
    w2 = u2 @ torch.diag(2 * s) @ u1.T  # V2 = U1
    a = theory.alignment_matrix(w1, w2).abs()
    torch.testing.assert_close(a, torch.eye(16, dtype=F64), rtol=0, atol=1e-10)
    assert theory.diagonal_mass(a) == pytest.approx(1.0, abs=1e-12)
    w2r = u2 @ torch.diag(2 * s) @ haar_orthogonal(16, gen).T
    assert theory.diagonal_mass(theory.alignment_matrix(w1, w2r)) < 0.3


def test_near_equal_blocks_and_block_mass():
    s = torch.tensor([4.0, 3.9, 2.0, 1.0, 0.99, 0.98])
    blocks = theory.near_equal_blocks(s, rel_tol=0.05)
    assert blocks == [[0, 1], [2], [3, 4, 5]]
    # a rotation inside the first block is block-diagonal but not diagonal
    c = torch.eye(6, dtype=F64)
    c[:2, :2] = torch.tensor([[0.6, 0.8], [-0.8, 0.6]], dtype=F64)
    assert theory.block_mass(c, blocks) == pytest.approx(1.0)
    assert theory.diagonal_mass(c) == pytest.approx((4 + 2 * 0.36) / 6)


@pytest.fixture(scope="module")
def checks():
    return verify.run_checks(0)


def test_every_verify_check_passes(checks):
    assert [c["name"] for c in checks if not c["passed"]] == []
    assert len(checks) == 8
    for c in checks:
        assert set(c) >= {"name", "error", "tolerance", "passed"}


def test_verify_lemma1_fails_with_a_wrong_x(monkeypatch):
    monkeypatch.setitem(theory.X_MATRIX, "paper",
                        lambda x, xp, z, zp: theory.sigma_hat_0(x, losses.paper_alpha(z, zp)))
    monkeypatch.setattr(verify, "X_MATRIX", theory.X_MATRIX)
    c = verify.check_lemma1(0, "paper", batch_sizes=(16,))
    assert not c["passed"] and c["error"] > 1e-3


def test_theorem3_rates_need_alignment():
    """Theorem 3's rates hold for aligned weights only: with V2 != U1 they are wrong, which
    is what makes the verify check (built with V2 = U1) meaningful."""
    from dimcollapse.toy.nets import haar_orthogonal

    gen = torch.Generator().manual_seed(1)
    u1, v1, u2, v2 = (haar_orthogonal(16, gen) for _ in range(4))
    k = torch.arange(16, dtype=F64)
    w1 = u1 @ torch.diag(torch.exp(-0.35 * k)) @ v1.T
    w2 = u2 @ torch.diag(1.5 * torch.exp(-0.3 * k)) @ v2.T
    g = torch.Generator().manual_seed(2)
    x1 = torch.randn(64, 16, generator=g, dtype=F64)
    x2 = x1 + 0.3 * torch.randn(64, 16, generator=g, dtype=F64)
    wd1, _ = verify._two_layer_flow(x1, x2)([w1, w2])
    xm = theory.lemma2_x(x1, x2, x1 @ (w2 @ w1).T, x2 @ (w2 @ w1).T)
    p1, _ = theory.theorem3_rates(w1, w2, xm)
    measured = theory.singular_value_rates(w1, wd1)
    assert float((p1 - measured).norm() / measured.norm()) > 1e-2


def test_permutation_mass_sees_a_reordered_alignment():
    perm = torch.eye(16, dtype=F64).flip(0)  # anti-diagonal: aligned, pairs in reverse order
    assert theory.permutation_mass(perm) == pytest.approx(1.0)
    assert theory.diagonal_mass(perm) == pytest.approx(0.0)
    from dimcollapse.toy.nets import haar_orthogonal

    q = haar_orthogonal(16, torch.Generator().manual_seed(0))
    assert theory.permutation_mass(q) < 0.5
