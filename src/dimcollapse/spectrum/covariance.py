"""The embedding spectrum of Jing et al. (ICLR 2022), Eqn 1, computed in memory.

    C = (1 / (N - ddof)) * sum_i (z_i - z_bar)(z_i - z_bar)^T        (Eqn 1 has ddof = 0)

The paper plots the singular values of C; C is symmetric positive semi-definite, so these are its
eigenvalues, which we compute with a symmetric eigensolver in float64 and return in descending
order. Choices that differ between the paper and the official code are explicit parameters:

- ``normalize``: L2-normalise each row first (the official image code does, the toy code does not).
- ``center``: subtract the mean (Eqn 1 does); ``center=False`` gives the uncentred second moment.
- ``ddof``: Eqn 1 divides by N (``ddof=0``); the official code's ``np.cov`` divides by N - 1.

This module is the in-memory reference; `SpectrumAccumulator` computes the same numbers in a
stream with O(d^2) memory.
"""

from __future__ import annotations

import sys

import numpy as np

from dimcollapse.errors import UserError

# torch.nn.functional.normalize's eps: a zero row stays zero instead of becoming NaN.
NORMALIZE_EPS = 1e-12


def as_numpy(z) -> np.ndarray:
    """A numpy view (or copy, for non-CPU / bfloat16 tensors) of a numpy array or torch tensor."""
    if isinstance(z, np.ndarray):
        return z
    if is_tensor(z):
        torch = sys.modules["torch"]
        z = z.detach()
        if z.dtype == torch.bfloat16:
            z = z.float()
        return z.cpu().numpy()
    return np.asarray(z)


def is_tensor(x) -> bool:
    """True for a torch.Tensor, without importing torch (none can exist before it is imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def l2_normalize_rows(z: np.ndarray) -> np.ndarray:
    """z_i / max(||z_i||, 1e-12), as torch.nn.functional.normalize. Shape: (N, d) -> (N, d)."""
    norms = np.sqrt(np.einsum("ij,ij->i", z, z))
    return z / np.maximum(norms, NORMALIZE_EPS)[:, None]


def eigvalsh_descending(matrix) -> np.ndarray:
    """Eigenvalues of a symmetric matrix (LAPACK syevd via numpy), float64, descending.

    Shape: (d, d) -> (d,). Rounding can make the eigenvalues of a PSD matrix slightly negative
    (|lambda| ~ 1e-16 of the largest in float64); they are returned as computed, `clip_psd`
    sets them to 0.
    """
    m = np.asarray(matrix, dtype=np.float64)
    require_finite(m, "covariance")
    ev = np.linalg.eigvalsh(m)
    return ev[::-1].copy()


def require_finite(x: np.ndarray, what: str) -> None:
    """Raise the one-line `UserError` for NaN/Inf (numpy's LinAlgError says nothing useful).

    Every spectrum of the library reaches LAPACK through `eigvalsh_descending` or
    `metrics.rankme`, which call this; the CLI's file path names the bad rows before that.
    """
    if not np.isfinite(x).all():
        raise UserError(f"the {what} of these embeddings is not finite: the rows hold NaN or "
                        "Inf values; find them with torch.isfinite(z).all(dim=1) (or "
                        "np.isfinite) and remove or fix those rows")


def clip_psd(eigenvalues: np.ndarray) -> np.ndarray:
    """Set negative eigenvalues of a PSD matrix (pure rounding) to 0."""
    return np.maximum(eigenvalues, 0.0)


def covariance_matrix(z, *, normalize: bool, center: bool = True, ddof: int = 0) -> np.ndarray:
    """Covariance (Eqn 1) of the rows of z in float64. Shape: (N, d) -> (d, d).

    Two passes in float64: the exact mean first, then the Gram of the centred rows, so there is
    no cancellation. Memory: one float64 copy of z.
    """
    x = np.array(as_numpy(z), dtype=np.float64)  # always a copy: we modify it in place
    if x.ndim != 2:
        raise ValueError(f"expected an (N, d) matrix, got shape {x.shape}")
    n = x.shape[0]
    if n - ddof <= 0:
        raise ValueError(f"need N > ddof rows, got N={n}, ddof={ddof}")
    if normalize:
        x = l2_normalize_rows(x)
    if center:
        x -= x.mean(axis=0)
    return (x.T @ x) / (n - ddof)


def covariance_spectrum(z, *, normalize: bool, center: bool = True, ddof: int = 0) -> np.ndarray:
    """Eigenvalues of the covariance of the rows of z (Eqn 1), float64, descending, >= 0.

    Shape: (N, d) -> (d,). z may be a numpy array or torch tensor of any real dtype.
    """
    return clip_psd(eigvalsh_descending(covariance_matrix(z, normalize=normalize, center=center,
                                                          ddof=ddof)))
