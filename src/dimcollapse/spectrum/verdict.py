"""The collapse verdict a user can act on: "complete", "dimensional" or "none".

Rule (in this order):

1. "complete": all embeddings sit at (nearly) one point on the sphere. Measured by the total
   variance of the L2-normalised rows u_i = z_i / ||z_i||, T = trace Cov(u) = (1/N) sum_i
   ||u_i - u_bar||^2 (ddof = 0), which for non-zero rows equals 1 - ||u_bar||^2 and lies in
   [0, 1]: ~1 for rows spread over the sphere (1 - 1/N for exactly uniform directions), 0 for
   identical directions. Complete when T < ``complete_threshold`` = 1e-4: the rows' RMS angle
   to their mean direction is then below ~0.01 rad (0.6 degrees), i.e. the embedding is one
   point up to 1% of the healthy spread. (In SimSiam's terms, Chen & He 2021 Fig 2: the mean
   per-dimension std of u is ~sqrt(T / d), so this is 1% of the healthy 1/sqrt(d).)
2. "dimensional": some dimensions collapsed (Jing et al. 2022, Fig 2): at least one of the
   leading min(d, N - 1) eigenvalues of the covariance below ``rel_threshold`` x the largest.
   Only those count because N centred rows span at most N - 1 dimensions: with N <= d the
   trailing d - N + 1 eigenvalues are 0 by the sample size alone, not by the model.
3. "none" otherwise.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from dimcollapse.errors import UserError
from dimcollapse.spectrum.covariance import as_numpy, l2_normalize_rows
from dimcollapse.spectrum.metrics import COLLAPSE_REL_THRESHOLD

COMPLETE_COLLAPSE_THRESHOLD = 1e-4
Verdict = Literal["complete", "dimensional", "none"]
VERDICTS: tuple[Verdict, ...] = ("complete", "dimensional", "none")


def normalized_total_variance(z) -> float:
    """trace of the covariance (ddof = 0) of the L2-normalised rows of z. (N, d) -> [0, 1].

    Equals sum_k std_k^2 of `normalized_std(z)` (ddof = 0), which is how a streaming summary gets
    it from `SpectrumAccumulator.normalized_std()`. Zero rows stay zero (as in normalize).
    """
    x = np.asarray(as_numpy(z), dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise UserError(f"expected an (N, d) matrix with N >= 1, got shape {x.shape}")
    u = l2_normalize_rows(x)
    return float(np.sum(u.var(axis=0)))


def max_sample_rank(dim: int, n_rows: int, *, center: bool = True) -> int:
    """Largest rank a covariance of n_rows rows in dim dimensions can have: min(d, N - 1)."""
    return max(0, min(int(dim), int(n_rows) - (1 if center else 0)))


def collapsed_dims_within_rank(eigenvalues, n_rows: int, *,
                               rel_threshold: float = COLLAPSE_REL_THRESHOLD,
                               center: bool = True) -> int:
    """Eigenvalues below rel_threshold x the largest among the leading min(d, N - 1) ones."""
    ev = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())[::-1]
    lead = ev[:max_sample_rank(ev.size, n_rows, center=center)]
    top = ev.max(initial=0.0)
    if top <= 0:
        return int(lead.size)
    return int(np.count_nonzero(lead < rel_threshold * top))


def collapse_verdict(eigenvalues, normalized_total_variance: float, *, n_rows: int,
                     rel_threshold: float = COLLAPSE_REL_THRESHOLD,
                     complete_threshold: float = COMPLETE_COLLAPSE_THRESHOLD,
                     center: bool = True) -> Verdict:
    """"complete" | "dimensional" | "none" by the rule in this module's docstring.

    eigenvalues: the covariance spectrum (d,) the collapsed dimensions are counted on (ours:
    of the L2-normalised, centred rows); normalized_total_variance: T above, in [0, 1];
    n_rows: N, the rows behind both; center: whether the spectrum was centred (rank <= N - 1)
    or not (rank <= N).
    """
    if n_rows < 2:
        raise UserError(f"a collapse verdict needs N >= 2 rows, got {n_rows}: pass more rows")
    if not 0 < rel_threshold < 1 or not 0 < complete_threshold < 1:
        raise UserError(f"thresholds must lie in (0, 1), got rel_threshold={rel_threshold}, "
                        f"complete_threshold={complete_threshold}")
    t = float(normalized_total_variance)
    if not np.isfinite(t) or t < -1e-12:
        raise UserError(f"normalized_total_variance must be a finite value >= 0, got {t}")
    if t < complete_threshold:
        return "complete"
    if collapsed_dims_within_rank(eigenvalues, n_rows, rel_threshold=rel_threshold,
                                  center=center) > 0:
        return "dimensional"
    return "none"
