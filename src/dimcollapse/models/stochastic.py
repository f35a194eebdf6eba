"""Stochastic projector arms: coordinates redrawn every step from (seed, step) only.

Both are functions of (seed, step): the same on every DDP rank and for both views of a step,
and a resumed run redraws what the uninterrupted run drew. The training loop calls
`set_step(step)` once per optimizer step, before the forward passes of that step.
"""

from __future__ import annotations

import torch

from dimcollapse.models.arms import Projector, step_generator


class RandomSubvectorProjector(Projector):
    """Random sub-vector each step (Table 2 ablation, 43.0%): z = r[:, idx] with idx d0
    distinct coordinates (sorted) drawn from (seed, step) at `set_step(step)`, so every rank and
    both views of a step use the same coordinates and a resumed run redraws the same ones.
    Shape: (B, D) -> (B, d0). Before any `set_step` call the coordinates of step 0 are used."""

    def __init__(self, in_dim: int, d0: int, seed: int):
        super().__init__()
        self.in_dim, self.d0, self.seed = in_dim, d0, seed
        self.out_dim = d0
        self.set_step(0)

    def set_step(self, step: int) -> None:
        self.step = int(step)
        perm = torch.randperm(self.in_dim, generator=step_generator(self.seed, self.step))
        self.index = perm[: self.d0].sort().values

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return r[:, self.index.to(r.device)]


class GroupProjector(Projector):
    """The official code's `--mode group`: every step a random permutation of the D
    coordinates of r is cut into `groups` groups of D // groups coordinates (8 x 256 for
    ResNet-50) and the loss is the *sum* over groups of the InfoNCE loss of each group (each
    group normalised on its own). Here the permutation comes from (seed, step) (the official
    code calls an unseeded `np.random.shuffle`, different on every rank). The losses treat a
    3-D z as independent groups and sum their losses. Shape: (B, D) -> (B, groups, D // groups);
    when groups does not divide D the leftover D % groups coordinates are left out that step."""

    def __init__(self, in_dim: int, groups: int, seed: int):
        super().__init__()
        self.in_dim, self.groups, self.seed = in_dim, groups, seed
        self.group_size = in_dim // groups
        self.out_dim = groups * self.group_size
        self.set_step(0)

    def set_step(self, step: int) -> None:
        self.step = int(step)
        perm = torch.randperm(self.in_dim, generator=step_generator(self.seed, self.step))
        self.index = perm[: self.out_dim]

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        z = r[:, self.index.to(r.device)]
        return z.reshape(r.shape[0], self.groups, self.group_size)
