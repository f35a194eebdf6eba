"""Effective rank (Roy & Vetterli 2007) and NESum (He & Ozay 2022): slow references, golden
values, the identities that define them."""

import math

import numpy as np
import pytest

from dimcollapse.spectrum import (
    covariance_spectrum,
    effective_rank,
    nesum,
    rankme_from_singular_values,
)
from dimcollapse.spectrum import effective_rank_from_singular_values as erank_sv


def ref_effective_rank(a):
    """Roy & Vetterli: sigma_k from the eigenvalues of A^T A (or A A^T, the smaller), p_k =
    sigma_k / sum sigma, H = -sum p log p with 0 log 0 = 0, erank = exp(H)."""
    a = np.asarray(a, dtype=np.float64)
    gram = a.T @ a if a.shape[1] <= a.shape[0] else a @ a.T
    sigma = [math.sqrt(max(float(v), 0.0)) for v in np.linalg.eigvalsh(gram)]
    top = max(sigma)
    sigma = [s if s > 1e-12 * top else 0.0 for s in sigma]  # rounding of exact zeros
    total = sum(sigma)
    h = 0.0
    for s in sigma:
        p = s / total
        if p > 0:
            h -= p * math.log(p)
    return math.exp(h)


def ref_nesum(z):
    """He & Ozay Def. 4.1: covariance by one outer product per row, sum(lambda) / max(lambda)."""
    z = np.asarray(z, dtype=np.float64)
    mean = sum(z) / len(z)
    c = sum(np.outer(r - mean, r - mean) for r in z) / len(z)
    lam = np.linalg.eigvalsh(c)
    return float(sum(lam) / max(lam))


def test_effective_rank_matches_reference():
    rng = np.random.default_rng(70)
    for shape in [(40, 6), (6, 40), (200, 32)]:
        a = rng.standard_normal(shape) * np.exp(-0.25 * np.arange(shape[1]))
        assert effective_rank(a) == pytest.approx(ref_effective_rank(a), rel=1e-10)


def test_effective_rank_golden_values():
    d = 7
    assert effective_rank(np.eye(d)) == pytest.approx(d, rel=1e-12)
    rank_one = np.outer(np.arange(1.0, 5.0), np.ones(3))
    assert effective_rank(rank_one) == pytest.approx(1.0, rel=1e-12)
    # p = (1/2, 1/4, 1/4): H = 1.5 log 2, erank = 2^1.5
    assert erank_sv([2.0, 1.0, 1.0]) == pytest.approx(2 ** 1.5, rel=1e-14)
    # zeros add nothing (0 log 0 = 0): exactly 2, where RankMe's eps lifts it above 2
    assert erank_sv([3.0, 3.0, 0.0, 0.0]) == pytest.approx(2.0, rel=1e-15)
    assert rankme_from_singular_values([3.0, 3.0, 0.0, 0.0]) > 2.0 + 1e-6


def test_effective_rank_invariances():
    rng = np.random.default_rng(71)
    a = rng.standard_normal((30, 8)) * np.exp(-0.4 * np.arange(8))
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    base = effective_rank(a)
    assert effective_rank(a @ q) == pytest.approx(base, rel=1e-12)  # orthogonal map
    assert effective_rank(1e-6 * a) == pytest.approx(base, rel=1e-12)  # scale
    assert 1.0 <= base <= 8.0


def test_effective_rank_of_covariance_is_on_its_eigenvalues():
    rng = np.random.default_rng(72)
    z = rng.standard_normal((500, 6)) * np.exp(-0.5 * np.arange(6))
    ev = covariance_spectrum(z, normalize=False)
    c = np.cov(z, rowvar=False, ddof=0)
    assert erank_sv(ev) == pytest.approx(effective_rank(c), rel=1e-10)


@pytest.mark.parametrize("bad", [[0.0, 0.0], [], [1.0, -0.5], [1.0, np.nan]])
def test_effective_rank_rejects_undefined_input(bad):
    with pytest.raises(ValueError):
        erank_sv(bad)


def test_effective_rank_rejects_non_matrix():
    with pytest.raises(ValueError, match="2-D"):
        effective_rank(np.ones((2, 3, 4)))


def test_nesum_matches_reference_and_stable_rank():
    rng = np.random.default_rng(73)
    z = rng.standard_normal((300, 10)) * np.exp(-0.3 * np.arange(10)) + 1.5
    got = nesum(covariance_spectrum(z, normalize=False))
    assert got == pytest.approx(ref_nesum(z), rel=1e-10)
    # = stable rank ||Z_c||_F^2 / ||Z_c||_2^2 of the centred rows
    zc = z - z.mean(axis=0)
    assert got == pytest.approx(np.sum(zc**2) / np.linalg.norm(zc, 2) ** 2, rel=1e-10)


def test_nesum_golden_values():
    assert nesum(np.ones(16)) == pytest.approx(16.0, rel=1e-15)  # whitened: d
    assert nesum([5.0, 0.0, 0.0]) == 1.0  # rank 1 (collapsed)
    assert nesum([4.0, 2.0, 1.0, 1.0]) == pytest.approx(2.0, rel=1e-15)
    assert nesum([1.0, -1e-17]) == 1.0  # rounding negatives count as 0
    # data with an isotropic covariance: rows +-e_j have C = I / d (ddof 0)
    d = 5
    z = np.vstack([np.eye(d), -np.eye(d)])
    assert nesum(covariance_spectrum(z, normalize=False)) == pytest.approx(d, rel=1e-12)


def test_nesum_undefined_for_constant_embeddings():
    with pytest.raises(ValueError, match="undefined"):
        nesum(np.zeros(4))
