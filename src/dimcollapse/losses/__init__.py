"""Losses: `infonce` (official DirectCLR objective) and `ntxent` (SimCLR), pure functions with
their choices as parameters, plus the LOSSES registry and thin nn.Module wrappers."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dimcollapse import catalogue
from dimcollapse.losses.contrastive import infonce, ntxent

# name -> loss(z1, z2, *, temperature, normalize) -> scalar
LOSSES: dict[str, Callable[..., torch.Tensor]] = {"infonce": infonce, "ntxent": ntxent}
catalogue.LOSSES.check(LOSSES)


def register_loss(name: str, loss: Callable[..., torch.Tensor]) -> None:
    """Add `name` to LOSSES and the catalogue (`--loss` accepts it)."""
    catalogue.LOSSES.register(name, LOSSES, loss)


class InfoNCELoss(nn.Module):
    """`infonce` with its parameters stored: forward(z1, z2) -> scalar."""

    def __init__(self, *, temperature: float = 0.1, normalize: bool = True, symmetric=True):
        super().__init__()
        self.temperature, self.normalize, self.symmetric = temperature, normalize, symmetric

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return infonce(
            z1, z2, temperature=self.temperature, normalize=self.normalize,
            symmetric=self.symmetric,
        )


class NTXentLoss(nn.Module):
    """`ntxent` with its parameters stored: forward(z1, z2) -> scalar."""

    def __init__(self, *, temperature: float = 0.1, normalize: bool = True):
        super().__init__()
        self.temperature, self.normalize = temperature, normalize

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return ntxent(z1, z2, temperature=self.temperature, normalize=self.normalize)


__all__ = ["LOSSES", "InfoNCELoss", "NTXentLoss", "infonce", "ntxent", "register_loss"]
