"""The collapse metrics as plain functions of an (N, d) matrix or of a `Spectrum` (public API).

Each takes either the rows z (numpy array or torch tensor, shape (N, d)) and computes the metric
from them as its authors define it (spectrum/metrics.py holds the definitions and citations),
or a `Spectrum` from `measure` and reads (or, for another threshold, recomputes) it there.
"""

from __future__ import annotations

import numpy as np

from dimcollapse.errors import UserError
from dimcollapse.spectrum import metrics
from dimcollapse.spectrum.covariance import covariance_spectrum
from dimcollapse.spectrum.lidar import LIDAR_DELTA, LIDAR_EPS
from dimcollapse.spectrum.lidar import lidar as lidar_of_views
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


def _covariance_eigenvalues(x, normalize: bool) -> np.ndarray:
    return covariance_spectrum(_check_matrix(x), normalize=normalize)


def effective_rank(x: Spectrum | object, *, normalize: bool = True) -> float | None:
    """Effective rank (Roy & Vetterli, EUSIPCO 2007) of the covariance C of the rows.

    p_k = lambda_k / sum_l lambda_l over the eigenvalues of C (its singular values: C is PSD),
    erank = exp(-sum_k p_k log p_k), 0 log 0 = 0; in [1, rank C]. x: rows (N, d), L2-normalised
    first when `normalize` (as `measure`); or a Spectrum (its value). None when C = 0. For the
    erank of some other matrix itself use `dimcollapse.spectrum.effective_rank(matrix)`.
    """
    if isinstance(x, Spectrum):
        return x.effective_rank
    ev = _covariance_eigenvalues(x, normalize)
    return metrics.effective_rank_from_singular_values(ev) if ev.max() > 0 else None


def nesum(x: Spectrum | object, *, normalize: bool = True) -> float | None:
    """NESum (He & Ozay, ICML 2022, Def. 4.1): sum_k lambda_k / lambda_1 of the covariance.

    x: rows (N, d), L2-normalised first when `normalize`; or a Spectrum. In [1, d]; None when
    every eigenvalue is 0.
    """
    if isinstance(x, Spectrum):
        return x.nesum
    ev = _covariance_eigenvalues(x, normalize)
    return metrics.nesum(ev) if ev.max() > 0 else None


def lidar(views, *, delta: float = LIDAR_DELTA, eps: float = LIDAR_EPS) -> float:
    """LiDAR (Thilak et al., ICLR 2024) of q views of each of n samples. (n, q, d) -> scalar.

    views[i, j]: the embedding of view j of sample i (numpy or torch). The effective rank (with
    eps) of Sigma_w^{-1/2} Sigma_b Sigma_w^{-1/2}, Sigma_w with the ridge delta (docs/spectrum.md).
    A Spectrum cannot give it (its rows carry no sample/view structure): raises UserError.
    """
    if isinstance(views, Spectrum):
        raise UserError("lidar() needs the (n, q, d) embeddings of q views of each sample, not a "
                        "Spectrum: stack the views of each sample on axis 1")
    return lidar_of_views(views, delta=delta, eps=eps)
