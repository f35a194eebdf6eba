"""Choosing the probe's L2 strength on held-out train rows (never on the test split).

SimCLR's (Chen et al. 2020) and Kornblith et al.'s (2019) linear evaluation on cached features:
hold out part of the train split, fit the L-BFGS probe for each l2 of a grid, keep the best by
held-out top-1, then refit on the whole train split with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dimcollapse.catalogue import PROBE_VAL_FRACTION
from dimcollapse.errors import UserError
from dimcollapse.eval.probe import DEFAULT_L2_GRID, linear_probe


@dataclass(frozen=True)
class L2Selection:
    """Outcome of `select_l2`: validation top-1 (percent) for each l2 of the grid."""

    l2: float
    grid: tuple[float, ...]
    val_top1: tuple[float, ...]
    val_fraction: float
    seed: int
    n_fit: int
    n_val: int

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def select_l2(
    train_x,
    train_y,
    *,
    grid: tuple[float, ...] = DEFAULT_L2_GRID,
    val_fraction: float = PROBE_VAL_FRACTION,
    seed: int = 0,
    **probe_kwargs,
) -> L2Selection:
    """Pick l2 from `grid` by top-1 on a held-out part of the train split (never the test split).

    Shapes: train_x (N, d), train_y (N,). A seeded permutation holds out `val_fraction` of the
    rows; the probe is fitted on the rest for each l2 (standardised with that rest's statistics)
    and scored on the held-out rows. Ties go to the larger l2 (the simpler model). Then refit on
    the whole train split with `linear_probe(..., l2=selection.l2)`. The procedure of SimCLR's
    and Kornblith et al.'s (2019) linear evaluation; `probe_kwargs` go to `linear_probe`.
    """
    if not grid or not all(g > 0 for g in grid):
        raise UserError(f"l2 grid {grid}: pass one or more positive values")
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction = {val_fraction}: pass a fraction between 0 and 1")
    x = torch.as_tensor(train_x)
    y = torch.as_tensor(train_y)
    n = x.shape[0]
    n_val = int(round(val_fraction * n))
    if n_val < 1 or n - n_val < 2:
        raise UserError(f"{n} train rows are too few to hold out {val_fraction:.0%} for validation")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, fit = perm[:n_val].to(x.device), perm[n_val:].to(x.device)
    xf, yf, xv, yv = x[fit], y[fit], x[val], y[val]
    num_classes = probe_kwargs.pop("num_classes", None) or int(y.max()) + 1
    scores = [
        linear_probe(xf, yf, xv, yv, l2=l2, num_classes=num_classes, **probe_kwargs).top1
        for l2 in grid
    ]
    best = max(range(len(grid)), key=lambda i: (scores[i], grid[i]))
    return L2Selection(
        l2=float(grid[best]), grid=tuple(float(g) for g in grid), val_top1=tuple(scores),
        val_fraction=float(val_fraction), seed=int(seed), n_fit=n - n_val, n_val=n_val,
    )
