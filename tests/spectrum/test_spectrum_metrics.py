"""RankMe, alpha-ReQ, collapsed dims, normalised std: references, known values, planted spectra."""

import numpy as np
import pytest

from dimcollapse.spectrum import (
    SpectrumAccumulator,
    alpha_req,
    collapsed_dims,
    covariance_spectrum,
    normalized_std,
    rankme,
    rankme_from_singular_values,
)


def test_rankme_matches_reference(ref):
    rng = np.random.default_rng(40)
    for shape in [(50, 8), (8, 50), (300, 32)]:
        z = rng.standard_normal(shape) * np.exp(-0.2 * np.arange(shape[1])) + 0.5
        assert rankme(z) == pytest.approx(ref.rankme(z), rel=1e-12)


def test_rankme_known_values():
    d = 64
    # orthogonal rows: all singular values equal -> RankMe = d (up to the eps term)
    q, _ = np.linalg.qr(np.random.default_rng(41).standard_normal((d, d)))
    assert rankme(q) == pytest.approx(d, rel=1e-4)
    assert rankme(np.eye(d)) == pytest.approx(d, rel=1e-4)
    # exact rank-k data: k equal singular values -> RankMe ~ k
    k = 5
    z = np.vstack([np.eye(d)[:k]] * 20)
    assert rankme(z) == pytest.approx(k, rel=1e-3)
    # eps as the authors: p_k = sigma_k / sum + 1e-7 (a single nonzero value gives ~1)
    assert rankme_from_singular_values([1.0, 0.0]) == pytest.approx(
        np.exp(-((1 + 1e-7) * np.log(1 + 1e-7) + 1e-7 * np.log(1e-7))), rel=1e-12)


def test_rankme_streaming_gram_equals_svd_on_collapsed_data():
    rng = np.random.default_rng(42)
    z = rng.standard_normal((2000, 6)) @ rng.standard_normal((6, 40))  # rank 6 of 40
    acc = SpectrumAccumulator(40, normalize=False, raw_max_samples=None)
    for s in range(0, 2000, 333):
        acc.update(z[s:s + 333])
    want = rankme(z)
    assert want < 6.01
    # sqrt(eig(Z^T Z)) puts ~1e-8 sigma_max of noise on the 34 zero singular values
    assert acc.rankme() == pytest.approx(want, rel=1e-5)


def test_alpha_req_recovers_planted_power_law(ref):
    for alpha in (0.5, 1.0, 2.3):
        ev = np.arange(1, 513, dtype=np.float64) ** -alpha * 7.0
        fit = alpha_req(ev)
        assert fit.alpha == pytest.approx(alpha, rel=1e-12)
        assert fit.r2 == pytest.approx(1.0, abs=1e-12)
        assert (fit.first_rank, fit.last_rank, fit.points) == (11, 100, 90)


def test_alpha_req_matches_reference_on_noisy_spectrum(ref):
    rng = np.random.default_rng(43)
    ev = np.sort(np.arange(1, 257.0) ** -1.3 * np.exp(0.3 * rng.standard_normal(256)))[::-1]
    fit = alpha_req(ev)
    want_alpha, want_r2 = ref.alpha_req(ev)
    assert fit.alpha == pytest.approx(want_alpha, rel=1e-10)
    assert fit.r2 == pytest.approx(want_r2, rel=1e-10)
    assert 0.5 < fit.r2 < 1.0


def test_alpha_req_from_features_with_planted_spectrum():
    """PCA eigenvalues of centred features whose covariance is i^-1.5 (random rotation)."""
    rng = np.random.default_rng(44)
    d, n = 128, 40000
    scales = np.arange(1, d + 1, dtype=np.float64) ** -0.75  # std -> variance i^-1.5
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    z = (rng.standard_normal((n, d)) * scales) @ q.T + 5.0
    fit = alpha_req(covariance_spectrum(z, normalize=False))
    assert fit.alpha == pytest.approx(1.5, abs=0.05)
    assert fit.r2 > 0.99


def test_alpha_req_small_dimensions():
    ev = np.arange(1, 17, dtype=np.float64) ** -2.0
    fit = alpha_req(ev)  # d = 16: ranks 11..16
    assert (fit.last_rank, fit.points) == (16, 6)
    assert fit.alpha == pytest.approx(2.0, rel=1e-12)
    assert alpha_req(ev[:12]).alpha is None  # ranks 11..12: too few points
    assert alpha_req(ev[:8]).points == 0
    with_zeros = np.concatenate([ev, np.zeros(4)])[:20]
    assert alpha_req(with_zeros).points == 6  # exact zeros left out of the log fit


def test_collapsed_dims_planted():
    ev = np.array([1.0, 0.5, 1e-3, 2e-4, 9e-5, 1e-9, 0.0])
    assert collapsed_dims(ev) == 3  # below 1e-4 x max
    assert collapsed_dims(ev, rel_threshold=1e-2) == 5
    assert collapsed_dims(ev * 1e6) == 3  # relative, so scale-free
    assert collapsed_dims(np.zeros(4)) == 4
    rng = np.random.default_rng(45)
    z = rng.standard_normal((500, 4)) @ rng.standard_normal((4, 12))
    assert collapsed_dims(covariance_spectrum(z, normalize=False)) == 8


def test_normalized_std_healthy_and_collapsed(ref):
    rng = np.random.default_rng(46)
    d = 64
    z = rng.standard_normal((20000, d))
    assert normalized_std(z).mean() == pytest.approx(1 / np.sqrt(d), rel=0.02)
    collapsed = np.outer(np.ones(500), rng.standard_normal(d)) + 1e-4 * rng.standard_normal(
        (500, d))
    assert normalized_std(collapsed).mean() < 1e-3
    small = rng.standard_normal((30, 5))
    np.testing.assert_allclose(normalized_std(small, ddof=1), ref.normalized_std(small, ddof=1),
                               rtol=1e-12)
