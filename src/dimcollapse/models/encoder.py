"""Encoder = backbone + projector: the model whose outputs the contrastive loss sees."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from dimcollapse.models.arms import Projector


class Encoder(nn.Module):
    """`forward(x) -> (r, z)`: r = backbone(x) the representation (what is evaluated, Fig 1),
    z = projector(r) the embedding the loss sees.

    Shape: (B, 3, H, W) -> r (B, backbone.out_dim), z (B, projector.out_dim), or
    z (B, groups, out_dim // groups) for the `group` projector.
    State dict keys: `backbone.*` and `projector.*`; checkpoints store the two parts separately.
    """

    backbone: nn.Module
    projector: nn.Module

    def __init__(self, backbone: nn.Module, projector: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    def set_step(self, step: int) -> None:
        """Tell the projector the optimizer step (stochastic arms redraw from (seed, step))."""
        # Every arm has set_step (Projector's interface), whether or not it subclasses it.
        cast(Projector, self.projector).set_step(step)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.backbone(x)
        return r, self.projector(r)
