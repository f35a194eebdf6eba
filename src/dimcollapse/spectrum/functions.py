"""The collapse metrics as plain functions of an (N, d) matrix or of a `Spectrum` (public API).

Each takes either the rows z (numpy array or torch tensor, shape (N, d)) and computes the metric
from them as its authors define it (spectrum/metrics.py holds the definitions and citations),
or a `Spectrum` from `measure` and reads (or, for another threshold, recomputes) it there.
"""

from __future__ import annotations

import numpy as np

from dimcollapse.spectrum import metrics
from dimcollapse.spectrum.covariance import covariance_spectrum
from dimcollapse.spectrum.measure import Spectrum, _check_matrix


def rankme(x: Spectrum | object, *, eps: float = metrics.RANKME_EPS) -> float | None:
    """RankMe (Garrido et al., ICML 2023): exp of the entropy of sigma / ||sigma||_1 + eps.

    x: the raw rows (N, d), uncentred and not normalised, all of them; or a Spectrum (its value,
    over its first 25,600 raw rows). Returns a scalar in [1, min(N, d)].
    """
    if isinstance(x, Spectrum):
        return x.rankme
    return metrics.rankme(_check_matrix(x), eps=eps)


def alpha_req(x: Spectrum | object) -> metrics.AlphaReQ | None:
    """alpha-ReQ (Agrawal et al., NeurIPS 2022): lambda_i ~ i^-alpha fitted over ranks 11..100.

    x: the raw rows (N, d), fitted on the PCA eigenvalues of the centred, un-normalised rows; or a
    Spectrum. Returns the fit record (`.alpha`, `.r2`, ranks used).
    """
    if isinstance(x, Spectrum):
        return x.alpha_req_fit
    return metrics.alpha_req(covariance_spectrum(_check_matrix(x), normalize=False))


def collapsed_dims(x: Spectrum | object, *, threshold: float = metrics.COLLAPSE_REL_THRESHOLD,
                   normalize: bool = True) -> int:
    """Dimensions whose covariance eigenvalue is below threshold x the largest (Jing et al. 2022).

    x: rows (N, d), L2-normalised first when `normalize` (as the paper's figures); or a Spectrum
    (its eigenvalues, at this threshold; `normalize` is then the Spectrum's own).
    """
    ev = x.eigenvalues if isinstance(x, Spectrum) else \
        covariance_spectrum(_check_matrix(x), normalize=normalize)
    return metrics.collapsed_dims(ev, threshold)


def normalized_std(x: Spectrum | object, *, per_dim: bool = False) -> float | np.ndarray:
    """Std of the L2-normalised rows z_i / ||z_i|| (Chen & He, SimSiam, CVPR 2021, Fig 2).

    Returns its mean over the d dimensions (~ 1/sqrt(d) healthy, -> 0 collapsed), or with
    per_dim the (d,) array. x: rows (N, d) or a Spectrum.
    """
    if isinstance(x, Spectrum):
        std = np.asarray(x.summary.normalized_std_per_dim, dtype=np.float64)
    else:
        std = metrics.normalized_std(_check_matrix(x))
    return std if per_dim else float(std.mean())
