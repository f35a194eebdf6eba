"""Per-feature standardisation fitted on the train split (the probe's input transform).

The probe sees (x - mean) / std with mean and std of the train features (applied unchanged to
the test features), as scikit-learn's StandardScaler would give it. Float32 features stay
float32 (the moments are accumulated so that they stay accurate); float64 stays float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dimcollapse.eval._inputs import raise_not_finite


@dataclass(frozen=True)
class Standardizer:
    """x -> (x - mean) / scale, with mean and scale (float64, shape (d,)) from the train split."""

    mean: Tensor
    scale: Tensor

    def __call__(self, x: Tensor, dtype: torch.dtype | None = None, chunk_rows: int = 8192):
        """Shape: (n, d) -> (n, d) of `dtype` (default x's dtype).

        float32 in and out: in float32, the mean split into a float32 head and tail so that
        x - head is exact near the mean (the input has float32 resolution anyway). Otherwise in
        float64 by chunks, so float64 input keeps its precision."""
        dtype = dtype or x.dtype
        mean, scale = self.mean.to(x.device), self.scale.to(x.device)
        if x.dtype == dtype == torch.float32:
            head = mean.float()
            tail = (mean - head.double()).float()
            return (x - head).sub_(tail).mul_(scale.reciprocal().float())
        out = torch.empty(x.shape, dtype=dtype, device=x.device)
        for i in range(0, x.shape[0], chunk_rows):
            out[i : i + chunk_rows] = (x[i : i + chunk_rows].to(torch.float64) - mean) / scale
        return out


def fit_standardizer(x: Tensor) -> Standardizer:
    """Per-feature mean and population std (ddof 0) of `x`, returned as float64.

    Shape: (N, d) -> Standardizer with (d,) tensors. See `standardize_fit`, which also returns
    the standardised copy of x.
    """
    return standardize_fit(x, x.dtype)[0]


def standardize_fit(
    x: Tensor, dtype: torch.dtype, *, second_moment: bool = False
) -> tuple[Standardizer, Tensor, Tensor | None]:
    """Fit the standardiser on `x`; return it, x standardised (in `dtype`) and optionally S.

    Shapes: (N, d) -> (Standardizer with (d,) float64 tensors, (N, d), S (d, d) float64 or
    None). S = E[s s^T] over the standardised rows s (the probe's preconditioner needs it).
    Works in float64 when x or `dtype` is float64, else in float32. Moments are taken about a
    shift c (the mean of an evenly strided subset of <= 1024 rows): with z = x - c, mean =
    c + E[z] and var = E[z^2] - E[z]^2, which does not cancel because E[z] is small next to the
    std. With `second_moment`, E[z z^T] comes from one Gram product whose diagonal also gives
    the variances; z is then standardised in place. A feature whose std is zero up to float
    resolution (<= 1e-7 * the largest std) keeps scale 1: a dead (collapsed) coordinate, common
    in collapsed representations, then stays 0 instead of blowing up. NaN or inf anywhere in
    `x` raises UserError (the moments become non-finite).
    """
    work = torch.float64 if torch.float64 in (x.dtype, dtype) else torch.float32
    n = x.shape[0]
    shift = x[:: max(1, n // 1024)][:1024].to(work).mean(dim=0).to(torch.float64)
    z = x.to(work) - shift.to(work)
    m1 = z.sum(dim=0).to(torch.float64) / n
    if second_moment:
        zz = gram(z).to(torch.float64) / n
        m2 = zz.diagonal().clone()
    else:
        m2 = (z * z).sum(dim=0).to(torch.float64) / n
    if not (torch.isfinite(m1).all() and torch.isfinite(m2).all()):
        raise_not_finite("train features")
    std = (m2 - m1.square()).clamp_min_(0.0).sqrt_()
    dead = std <= 1e-7 * std.max().clamp_min(torch.finfo(torch.float64).tiny)
    scale = torch.where(dead, torch.ones_like(std), std)
    z.sub_(m1.to(work)).mul_(scale.reciprocal().to(work))
    s = None
    if second_moment:  # E[(z - m1)(z - m1)^T] / (scale scale^T); dead rows/columns are 0
        s = (zz - torch.outer(m1, m1)) / torch.outer(scale, scale)
        s[dead, :] = 0.0
        s[:, dead] = 0.0
    return Standardizer(mean=shift + m1, scale=scale), z.to(dtype), s


def gram(x: Tensor, blocks: int = 4) -> Tensor:
    """x^T x from the upper block triangle only (10/16 of the products for 4 blocks).

    Shape: (N, d) -> (d, d), in x's dtype.
    """
    d = x.shape[1]
    out = torch.empty(d, d, dtype=x.dtype, device=x.device)
    edges = [i * d // blocks for i in range(blocks + 1)]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        blk = x[:, lo:hi].t() @ x[:, lo:]
        out[lo:hi, lo:] = blk
        out[lo:, lo:hi] = blk.t()
    return out
