"""Collapse metrics, each defined as its authors define it.

- RankMe (Garrido, Balestriero, Najman, LeCun, ICML 2023): singular values sigma_k of the raw,
  uncentred N x d embedding matrix Z, k = 1..min(N, d); p_k = sigma_k / ||sigma||_1 + eps with
  eps = 1e-7; RankMe = exp(-sum_k p_k log p_k). (The authors use at most 25,600 samples.)
- alpha-ReQ (Agrawal, Mondal, Ghosh, Richards, NeurIPS 2022): fit lambda_i ~ i^(-alpha) to the
  PCA eigenvalues of the centred features, by weighted least squares of log lambda_i on log i
  with weights 1/i over ranks i = 11..100 (the authors' code: fit range `arange(10, 100)`,
  0-based). R^2 is the plain coefficient of determination of log lambda over the fitted ranks
  (their `fit_R2_100`).
- Collapsed dimensions (Jing et al., ICLR 2022, Fig 2: "singular values collapse to zero"): the
  number of eigenvalues of the covariance below ``rel_threshold`` times the largest.
- Per-dimension std of L2-normalised embeddings (Chen & He, SimSiam, CVPR 2021, Fig 2):
  ~ 1/sqrt(d) when the embeddings spread over all d dimensions, -> 0 under collapse.
- Effective rank (Roy & Vetterli, EUSIPCO 2007): singular values sigma_k of any matrix,
  k = 1..min(M, N); p_k = sigma_k / ||sigma||_1 (no eps; 0 log 0 = 0); erank = exp(H(p)).
- NESum (He & Ozay, ICML 2022, Def. 4.1): sum_i lambda_i / lambda_1 of the covariance
  eigenvalues, in [1, d].

LiDAR (Thilak et al., ICLR 2024) lives in `spectrum/lidar.py`, the collapse verdict in
`spectrum/verdict.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dimcollapse.records import Record
from dimcollapse.spectrum.covariance import as_numpy, l2_normalize_rows, require_finite

RANKME_EPS = 1e-7
ALPHA_REQ_RANKS = (11, 100)
COLLAPSE_REL_THRESHOLD = 1e-4
ALPHA_REQ_MIN_POINTS = 3


def rankme_from_singular_values(singular_values, *, eps: float = RANKME_EPS) -> float:
    """RankMe from the singular values of Z (any order). Shape: (min(N, d),) -> scalar."""
    s = np.asarray(singular_values, dtype=np.float64)
    total = s.sum()
    if not total > 0:
        raise ValueError("RankMe is undefined for an all-zero matrix")
    p = s / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def rankme(z, *, eps: float = RANKME_EPS) -> float:
    """RankMe of the raw, uncentred embedding matrix z (Garrido et al. 2023). Shape: (N, d) -> ().

    Computed with a float64 SVD of z itself; `SpectrumAccumulator` gets the same singular values
    as sqrt of the eigenvalues of the uncentred Gram z^T z.
    """
    x = np.asarray(as_numpy(z), dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected an (N, d) matrix, got shape {x.shape}")
    require_finite(x, "matrix")
    return rankme_from_singular_values(np.linalg.svd(x, compute_uv=False), eps=eps)


@dataclass(frozen=True)
class AlphaReQ(Record):
    """Result of the alpha-ReQ fit. alpha/r2 are None when fewer than 3 usable ranks exist."""

    alpha: float | None
    r2: float | None
    first_rank: int
    last_rank: int  # the last rank actually available: min(100, d)
    points: int  # ranks used: those in [first_rank, last_rank] with a positive eigenvalue


def alpha_req(eigenvalues, *, first_rank: int = ALPHA_REQ_RANKS[0],
              last_rank: int = ALPHA_REQ_RANKS[1]) -> AlphaReQ:
    """Power-law decay exponent alpha of a spectrum (Agrawal et al. 2022), and the fit's R^2.

    eigenvalues: PCA eigenvalues of the centred features, descending; rank i is the i-th
    (1-based). Fits log lambda_i = c - alpha log i over ranks first_rank..min(last_rank, d) by
    least squares with weights 1/i. When d < 100 the range is cut at d (for d = 16: ranks
    11..16); eigenvalues that are exactly 0 (collapsed to rounding) are left out, since log 0 is
    undefined. With fewer than 3 usable ranks alpha and r2 are None.
    """
    ev = np.asarray(eigenvalues, dtype=np.float64)
    hi = min(last_rank, ev.size)
    ranks = np.arange(first_rank, hi + 1, dtype=np.float64)
    lam = ev[first_rank - 1:hi] if hi >= first_rank else np.empty(0)
    keep = lam > 0
    ranks, lam = ranks[keep], lam[keep]
    if ranks.size < ALPHA_REQ_MIN_POINTS:
        return AlphaReQ(None, None, first_rank, hi, int(ranks.size))
    y = np.log(lam)
    x = np.log(ranks)
    w = 1.0 / ranks
    # Weighted least squares for y = c - alpha x: normal equations of a 2-parameter fit.
    sw, sx, sy = w.sum(), (w * x).sum(), (w * y).sum()
    sxx, sxy = (w * x * x).sum(), (w * x * y).sum()
    slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    intercept = (sy - slope * sx) / sw
    resid = y - (intercept + slope * x)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else None
    return AlphaReQ(float(-slope), r2, first_rank, hi, int(ranks.size))


def collapsed_dims(eigenvalues, rel_threshold: float = COLLAPSE_REL_THRESHOLD) -> int:
    """Number of eigenvalues below rel_threshold * (largest eigenvalue). Shape: (d,) -> int.

    All d dimensions count as collapsed when the largest eigenvalue is 0 (constant data).
    Note that a sample covariance of N rows has rank <= N - 1 (centred), so with N <= d at least
    d - N + 1 dimensions are "collapsed" by the sample size alone.
    """
    ev = np.asarray(eigenvalues, dtype=np.float64)
    top = ev.max(initial=0.0)
    if top <= 0:
        return int(ev.size)
    return int(np.count_nonzero(ev < rel_threshold * top))


def normalized_std(z, *, ddof: int = 0) -> np.ndarray:
    """Per-dimension std of the L2-normalised rows z_i / ||z_i|| (SimSiam's collapse monitor).

    Shape: (N, d) -> (d,). Healthy: each entry ~ 1/sqrt(d); collapsed: -> 0.
    """
    x = l2_normalize_rows(np.asarray(as_numpy(z), dtype=np.float64))
    return x.std(axis=0, ddof=ddof)


@dataclass(frozen=True)
class StdSummary(Record):
    """mean / min / max of a per-dimension std, and the healthy reference 1/sqrt(d)."""

    mean: float
    min: float
    max: float
    reference_1_over_sqrt_d: float


def std_summary(std: np.ndarray) -> StdSummary:
    """mean / min / max of the per-dimension std and the healthy reference 1/sqrt(d)."""
    std = np.asarray(std, dtype=np.float64)
    return StdSummary(mean=float(std.mean()), min=float(std.min()), max=float(std.max()),
                      reference_1_over_sqrt_d=float(1.0 / np.sqrt(std.size)))


def effective_rank_from_singular_values(singular_values) -> float:
    """Effective rank (Roy & Vetterli 2007) from a matrix's singular values. (Q,) -> scalar.

    p_k = sigma_k / sum_j sigma_j over all Q = min(M, N) singular values; erank = exp(-sum_k
    p_k log p_k) with 0 log 0 = 0, so zero singular values add nothing and erank lies in
    [1, rank]: exactly r for r equal nonzero values. Unlike RankMe there is no eps (RankMe adds
    1e-7 to every p_k, which lifts a rank-1 matrix slightly above 1).

    The singular values of the symmetric PSD covariance C are its eigenvalues, so
    ``effective_rank_from_singular_values(covariance_spectrum(z, ...))`` is erank(C); the
    centred data matrix has singular values sqrt(N * eigenvalue), so passing
    ``np.sqrt(eigenvalues)`` gives erank of the centred rows instead (its p_k follow sigma_k,
    not sigma_k^2, and weigh small directions more).
    """
    s = np.asarray(singular_values, dtype=np.float64).ravel()
    if s.size == 0 or np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError("singular values must be a non-empty vector of finite values >= 0")
    total = s.sum()
    if not total > 0:
        raise ValueError("the effective rank is undefined for an all-zero matrix")
    p = s[s > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def effective_rank(matrix) -> float:
    """Effective rank (Roy & Vetterli 2007) of any real matrix, via a float64 SVD. (M, N) -> ().

    Use it on whatever matrix you mean: the raw embeddings (RankMe without its eps), the centred
    embeddings, or the covariance C (whose singular values are its eigenvalues).
    """
    x = np.asarray(as_numpy(matrix), dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {x.shape}")
    return effective_rank_from_singular_values(np.linalg.svd(x, compute_uv=False))


def nesum(eigenvalues) -> float:
    """NESum, the normalised eigenvalue sum (He & Ozay, ICML 2022, Def. 4.1). (d,) -> scalar.

    NESum = sum_i lambda_i / lambda_1 over the eigenvalues of the feature covariance, lambda_1
    the largest. 1 for a rank-1 (collapsed) covariance, d for a whitened one (all equal).
    Negative eigenvalues are rounding of a PSD matrix and count as 0. The value is the inverse
    of the top eigenvalue's share of the variance (the "stable rank" of the centred rows).
    """
    ev = np.maximum(np.asarray(eigenvalues, dtype=np.float64).ravel(), 0.0)
    top = ev.max(initial=0.0)
    if not top > 0:
        raise ValueError("NESum is undefined when all eigenvalues are 0 (constant embeddings)")
    return float(ev.sum() / top)
