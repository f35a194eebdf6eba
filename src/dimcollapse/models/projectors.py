"""The projector registry: every arm of the paper's Tables 1-2 (SPEC section 4), by name.

A projector maps the representation r (B, D) to the embedding z the loss sees. All of them:
`.out_dim`, `forward(r)`, and `.set_step(step)` (a no-op except for the stochastic arms, which
redraw their coordinates from (seed, step) only: the same on every DDP rank, the same after a
resume). Shapes below use D = in_dim (2048 for ResNet-50, 512 for ResNet-18).

| name               | z                                              | paper (ImageNet top-1) |
|--------------------|------------------------------------------------|------------------------|
| `mlp`              | Lin(D->h, no bias)-BN-ReLU-Lin(h->128, no bias)-BN | SimCLR 2-layer, 66.5 |
| `linear`           | Lin(D->128, no bias)                           | 1-layer linear, 61.1   |
| `none`             | r                                              | no projector, 51.5     |
| `directclr`        | r[:, :d0]                                      | DirectCLR, 62.7        |
| `orthogonal`       | W r, W = expm(A - A^T) (all singular values 1) | 52.2                   |
| `diagonal`         | diag(s) r, s trainable, init 1                 | 60.2                   |
| `lowrank`          | U diag(1 x d0, 0 x rest) V^T r, U, V fixed     | 62.3                   |
| `lowrank-diagonal` | diag(1 x d0, 0 x rest) r  (= DirectCLR)        | 62.7                   |
| `random-subvector` | d0 coordinates of r, redrawn every step        | 43.0                   |
| `group`            | official code's `--mode group`: (B, 8, D/8)    | -                      |

See docs/methods.md for each arm's derivation and the exact semantics of `group`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from dimcollapse import catalogue
from dimcollapse.catalogue import check_d0
from dimcollapse.errors import UserError
from dimcollapse.models.arms import (
    DiagonalProjector,
    IdentityProjector,
    LinearProjector,
    LowRankDiagonalProjector,
    LowRankProjector,
    MLPProjector,
    OrthogonalProjector,
    SliceProjector,
)
from dimcollapse.models.stochastic import GroupProjector, RandomSubvectorProjector


class ProjectorOptions(NamedTuple):
    """What build_projector was given; each arm reads the fields it uses."""

    d0: int | None
    hidden_dim: int | None
    out_dim: int | None
    seed: int
    groups: int


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise UserError(f"{name} = {value!r} must be a positive integer")
    return int(value)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def projector_d0(name: str, in_dim: int, o: ProjectorOptions) -> int:
    """d0 of arm `name` for an r of `in_dim` coordinates (`catalogue.check_d0`)."""
    d0 = check_d0(o.d0, in_dim, needed_by=name)
    assert d0 is not None  # needed_by makes a missing d0 an error
    return d0


def _mlp(in_dim: int, o: ProjectorOptions) -> nn.Module:
    hidden = _positive("hidden_dim", _or(o.hidden_dim, in_dim))
    return MLPProjector(in_dim, hidden, _positive("out_dim", _or(o.out_dim, 128)))


def _linear(in_dim: int, o: ProjectorOptions) -> nn.Module:
    return LinearProjector(in_dim, _positive("out_dim", _or(o.out_dim, 128)))


def _orthogonal(in_dim: int, o: ProjectorOptions) -> nn.Module:
    out = _positive("out_dim", _or(o.out_dim, in_dim))
    if out > in_dim:
        raise UserError(
            f"out_dim = {out} exceeds the representation size {in_dim}: an orthogonal projector "
            f"cannot map to more dimensions than it gets; pass out_dim <= {in_dim}"
        )
    return OrthogonalProjector(in_dim, out)


def _group(in_dim: int, o: ProjectorOptions) -> nn.Module:
    groups = _positive("groups", o.groups)
    if groups > in_dim:
        raise UserError(f"groups = {groups} exceeds the representation size {in_dim}; pass fewer")
    return GroupProjector(in_dim, groups, o.seed)


# name -> factory(in_dim, ProjectorOptions) -> module with .out_dim and .set_step(step).
PROJECTORS: dict[str, Callable[[int, ProjectorOptions], nn.Module]] = {
    "mlp": _mlp,
    "linear": _linear,
    "none": lambda D, o: IdentityProjector(D),
    "directclr": lambda D, o: SliceProjector(D, projector_d0("directclr", D, o)),
    "orthogonal": _orthogonal,
    "diagonal": lambda D, o: DiagonalProjector(D),
    "lowrank": lambda D, o: LowRankProjector(D, projector_d0("lowrank", D, o), o.seed),
    "lowrank-diagonal": lambda D, o: LowRankDiagonalProjector(
        D, projector_d0("lowrank-diagonal", D, o)
    ),
    "random-subvector": lambda D, o: RandomSubvectorProjector(
        D, projector_d0("random-subvector", D, o), o.seed
    ),
    "group": _group,
}

catalogue.PROJECTORS.check(PROJECTORS)
USES_D0 = catalogue.USES_D0  # the arms that need d0 (the others ignore it)


def register_projector(name: str, factory: Callable[[int, ProjectorOptions], nn.Module], *,
                       uses_d0: bool = False) -> None:
    """Add arm `name` to PROJECTORS and to the catalogue (train flags, reproduce, tests).

    factory(in_dim, ProjectorOptions) -> module with `.out_dim` and `.set_step(step)` (see
    `models.arms.Projector`); build_projector seeds the torch RNG with the run's seed around
    it. uses_d0: the arm reads `options.d0` (validate it with `projector_d0`), so `reproduce`
    gives it the table's d0 and the run folder's key names it.
    """
    catalogue.PROJECTORS.register(name, PROJECTORS, factory)
    if uses_d0:
        catalogue.USES_D0.register(name)


def unregister_projector(name: str) -> None:
    """Undo `register_projector` (for tests)."""
    catalogue.PROJECTORS.unregister(name, PROJECTORS)
    catalogue.USES_D0.unregister(name)


def build_projector(
    name: str,
    in_dim: int,
    *,
    d0: int | None = None,
    hidden_dim: int | None = None,
    out_dim: int | None = None,
    seed: int = 0,
    groups: int = 8,
) -> nn.Module:
    """Build the projector arm `name` for representations of size `in_dim`.

    `d0`: coordinates the loss sees (directclr, lowrank, lowrank-diagonal, random-subvector;
    required there, ignored by the other arms). `hidden_dim` (mlp; default in_dim) and
    `out_dim` (mlp and linear: default 128; orthogonal: default in_dim) are ignored by arms
    whose size is fixed. `groups` is for `group` (default 8, the official code's). `seed` makes
    the initial weights, the fixed matrices and every per-step draw reproducible; the global
    torch RNG is left untouched. Returns a module with `.out_dim`, `.name`, `.set_step(step)`.
    """
    if name not in PROJECTORS:
        raise UserError(f"unknown projector {name!r}; choose one of {', '.join(PROJECTORS)}")
    in_dim = _positive("in_dim", in_dim)
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise UserError(f"seed = {seed!r} must be a non-negative integer")
    options = ProjectorOptions(d0, hidden_dim, out_dim, int(seed), groups)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        module = PROJECTORS[name](in_dim, options)
    module.name = name  # type: ignore[assignment]  # torch types Module attributes as Tensor|Module
    return module
