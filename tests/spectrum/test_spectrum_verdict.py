"""The collapse verdict: one test per case, the rank rule for N <= d, the total-variance input."""

import numpy as np
import pytest

from dimcollapse.errors import UserError
from dimcollapse.spectrum import (
    COMPLETE_COLLAPSE_THRESHOLD,
    SpectrumAccumulator,
    collapse_verdict,
    collapsed_dims,
    collapsed_dims_within_rank,
    covariance_spectrum,
    max_sample_rank,
    normalized_std,
    normalized_total_variance,
)


def ref_total_variance(z):
    """(1/N) sum_i ||u_i - u_bar||^2 for u_i = z_i / ||z_i||, with loops."""
    rows = [r / np.sqrt(sum(v * v for v in r)) for r in np.asarray(z, dtype=np.float64)]
    mean = sum(rows) / len(rows)
    return sum(float(np.sum((r - mean) ** 2)) for r in rows) / len(rows)


def verdict_of(z, **kw):
    z = np.asarray(z, dtype=np.float64)
    return collapse_verdict(covariance_spectrum(z, normalize=True),
                            normalized_total_variance(z), n_rows=z.shape[0], **kw)


def test_total_variance_reference_and_identities():
    rng = np.random.default_rng(90)
    z = rng.standard_normal((200, 6)) + 0.7
    t = normalized_total_variance(z)
    assert t == pytest.approx(ref_total_variance(z), rel=1e-12)
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    assert t == pytest.approx(1.0 - np.sum(u.mean(axis=0) ** 2), rel=1e-12)  # 1 - ||u_bar||^2
    assert t == pytest.approx(np.sum(normalized_std(z) ** 2), rel=1e-12)  # sum of SimSiam std^2
    acc = SpectrumAccumulator(6, normalize=True)
    acc.update(z)
    assert t == pytest.approx(np.sum(acc.normalized_std() ** 2), rel=1e-10)  # streaming
    d = 5
    assert normalized_total_variance(np.vstack([np.eye(d), -np.eye(d)])) == pytest.approx(1.0)
    assert normalized_total_variance(np.tile([[3.0, -1.0, 2.0]], (50, 1))) == pytest.approx(0.0,
                                                                                          abs=1e-15)


def test_verdict_complete():
    rng = np.random.default_rng(91)
    point = rng.standard_normal(16)
    z = point + 1e-4 * rng.standard_normal((500, 16))  # every row at one point, 1e-4 spread
    assert normalized_total_variance(z) < COMPLETE_COLLAPSE_THRESHOLD
    assert verdict_of(z) == "complete"
    assert verdict_of(np.tile(point, (10, 1))) == "complete"  # exactly identical rows


def test_verdict_dimensional():
    rng = np.random.default_rng(92)
    z = rng.standard_normal((2000, 3)) @ rng.standard_normal((3, 16))  # rank 3 in 16 dims
    assert normalized_total_variance(z) > 0.1
    assert verdict_of(z) == "dimensional"


def test_verdict_none():
    rng = np.random.default_rng(93)
    z = rng.standard_normal((3000, 8))
    assert verdict_of(z) == "none"


def test_verdict_counts_only_the_rank_the_sample_allows():
    rng = np.random.default_rng(94)
    n, d = 5, 16
    z = rng.standard_normal((n, d))
    ev = covariance_spectrum(z, normalize=True)
    assert max_sample_rank(d, n) == n - 1
    assert collapsed_dims(ev) == d - n + 1  # the plain count is all sample size
    assert collapsed_dims_within_rank(ev, n) == 0
    assert verdict_of(z) == "none"
    low = rng.standard_normal((n, 2)) @ rng.standard_normal((2, d))  # rank 2 < N - 1 = 4
    assert verdict_of(low) == "dimensional"
    # uncentred spectra allow rank N
    assert max_sample_rank(d, n, center=False) == n


def test_verdict_thresholds_are_the_boundaries():
    ev = np.array([1.0, 0.5, 2e-4])
    assert collapse_verdict(ev, 0.5, n_rows=100) == "none"
    assert collapse_verdict(ev, 0.5, n_rows=100, rel_threshold=3e-4) == "dimensional"
    assert collapse_verdict(ev, 0.99e-4, n_rows=100) == "complete"
    assert collapse_verdict(ev, 1.01e-4, n_rows=100) == "none"
    assert collapse_verdict(ev, 0.5, n_rows=100, complete_threshold=0.6) == "complete"


@pytest.mark.parametrize("kw", [{"n_rows": 1}, {"n_rows": 10, "rel_threshold": 0.0},
                                {"n_rows": 10, "complete_threshold": 1.5}])
def test_verdict_rejects_bad_arguments(kw):
    with pytest.raises(UserError):
        collapse_verdict(np.ones(3), 0.5, **kw)


def test_verdict_rejects_bad_total_variance():
    with pytest.raises(UserError):
        collapse_verdict(np.ones(3), float("nan"), n_rows=10)
    with pytest.raises(UserError):
        normalized_total_variance(np.ones(4))
