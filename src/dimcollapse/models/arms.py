"""Deterministic projector arms (see `projectors.py` for the registry and the paper's table).

Shapes use D = in_dim. Each arm has `.out_dim` and a no-op `.set_step(step)`.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dimcollapse.linalg import haar_orthogonal


class Projector(nn.Module):
    """Base of the projectors that are not a torch container: `.out_dim`, no-op `set_step`."""

    out_dim: int

    def set_step(self, step: int) -> None:
        """Deterministic arms ignore the step."""


def out_dim_of(module: nn.Module) -> int:
    """`module.out_dim`, which every backbone and projector arm sets (torch types a module's
    attributes as Tensor | Module, so the checker cannot see it)."""
    return cast(int, module.out_dim)


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU torch.Generator determined by (seed, step, stream) only, well mixed (numpy's
    SeedSequence), so consecutive steps or seeds give unrelated draws."""
    state = np.random.SeedSequence([seed, step, stream]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class MLPProjector(nn.Sequential):
    """SimCLR's 2-layer projector as in the official code: Lin(D->h, no bias)-BN-ReLU-
    Lin(h->out, no bias)-BN. Keys `0.weight`, `1.*`, `3.weight`, `4.*` are the official
    `projector.*` keys. Shape: (B, D) -> (B, out_dim)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim, bias=False),
            nn.BatchNorm1d(out_dim),
        )
        self.out_dim = out_dim

    def set_step(self, step: int) -> None:
        """Deterministic: ignores the step."""


class LinearProjector(nn.Linear):
    """One linear layer without bias (official `--mode single`). Shape: (B, D) -> (B, out_dim)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__(in_dim, out_dim, bias=False)
        self.out_dim = out_dim

    def set_step(self, step: int) -> None:
        """Deterministic: ignores the step."""


class IdentityProjector(Projector):
    """No projector: z = r. Shape: (B, D) -> (B, D)."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.out_dim = in_dim

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return r


class SliceProjector(Projector):
    """DirectCLR (Section 6): z = r[:, :d0], the first d0 coordinates, no trainable weights.
    Shape: (B, D) -> (B, d0)."""

    def __init__(self, in_dim: int, d0: int):
        super().__init__()
        self.d0 = d0
        self.out_dim = d0

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return r[:, : self.d0]


class DiagonalProjector(Projector):
    """Trainable diagonal projector (Table 2): z = diag(s) r = s * r, s initialised to ones.
    `s` is 1-D, so the optimiser's parameter rule treats it like a norm scale (no weight decay,
    no LARS adaptation). Shape: (B, D) -> (B, D)."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(in_dim))
        self.out_dim = in_dim

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return r * self.scale


class LowRankDiagonalProjector(Projector):
    """Fixed low-rank diagonal projector (Table 2): z = diag(1 x d0, 0 x (D-d0)) r, i.e. r with
    coordinates d0.. set to zero. Up to those zeros it is DirectCLR: inner products and norms
    of z equal those of r[:, :d0], so the normalised InfoNCE loss and every gradient are the
    same. Shape: (B, D) -> (B, D)."""

    def __init__(self, in_dim: int, d0: int):
        super().__init__()
        self.d0 = d0
        self.out_dim = in_dim

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return F.pad(r[:, : self.d0], (0, self.out_dim - self.d0))


class LowRankProjector(Projector):
    """Fixed low-rank projector (Table 2): z = U diag(1 x d0, 0 x rest) V^T r with U, V fixed
    Haar-random orthogonal D x D matrices drawn from `seed`. Only the first d0 columns of U and
    V matter, so the buffers hold U[:, :d0] and V[:, :d0] (D x d0 each, saved in the state dict,
    never trained). Shape: (B, D) -> (B, D); the map has rank d0 and singular values 1 (d0 of
    them) and 0."""

    def __init__(self, in_dim: int, d0: int, seed: int):
        super().__init__()
        u = haar_orthogonal(in_dim, step_generator(seed, 0, stream=1))[:, :d0]
        v = haar_orthogonal(in_dim, step_generator(seed, 0, stream=2))[:, :d0]
        self.u: torch.Tensor  # buffers, set by register_buffer
        self.v: torch.Tensor
        self.register_buffer("u", u.float().contiguous())
        self.register_buffer("v", v.float().contiguous())
        self.d0 = d0
        self.out_dim = in_dim

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return (r @ self.v.to(r.dtype)) @ self.u.to(r.dtype).T


class OrthogonalProjector(Projector):
    """Orthogonal projector (Table 2) by the exponential-map parametrisation (Casado &
    Martinez-Rubio 2019): W = expm(A - A^T)[:out_dim] with A (D x D) trainable. A - A^T is
    skew-symmetric, so expm of it is orthogonal: all singular values of W are 1 whatever A is.
    A starts at zero (W = I, or its first out_dim rows). Shape: (B, D) -> (B, out_dim),
    out_dim = D by default (the paper's square single layer).

    Note: for out_dim = D, W is a rotation, and the normalised InfoNCE loss only sees inner
    products of normalised z, which a rotation preserves: the loss, and every gradient reaching
    the backbone, equal those with no projector (and dL/dA = 0). This matches the paper's 52.2%
    vs 51.5% for no projector.
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.skew = nn.Parameter(torch.zeros(in_dim, in_dim))
        self.out_dim = out_dim

    def weight(self) -> torch.Tensor:
        """W (out_dim x D), computed from A each call. Rows are orthonormal."""
        w = torch.linalg.matrix_exp(self.skew - self.skew.T)
        return w[: self.out_dim]

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        w = self.weight()
        return r @ w.to(r.dtype).T
