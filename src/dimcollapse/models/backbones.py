"""Backbones: torchvision ResNet-18/50 with the classifier removed and a choice of stem.

The returned module *is* a `torchvision.models.ResNet` (with `fc = nn.Identity()`), so its
`state_dict()` keys are torchvision's own (`conv1.weight`, `layer4.2.bn3.running_var`, ...,
without `fc.*`). Consequences:

- the official DirectCLR checkpoints (`backbone` = torchvision resnet50 with `fc = Identity`)
  load with `load_state_dict(..., strict=True)` directly;
- a plain torchvision ResNet state_dict loads after dropping its `fc.weight` / `fc.bias` keys
  (and, for the `cifar` stem, only if it was trained with that stem: `conv1.weight` differs in
  shape, 64x3x3x3 vs 64x3x7x7).

Stems (the first layers, before `layer1`):
- `imagenet`: torchvision's 7x7 stride-2 conv + 3x3 stride-2 max-pool (224 -> 56).
- `cifar`: a 3x3 stride-1 conv and no max-pool (32 -> 32), the usual CIFAR ResNet variant
  (SimCLR's CIFAR experiments, solo-learn, lightly).

`zero_init_residual=True` as in the paper (Appendix D) and the official code: the last BN of
every residual block starts at zero, so each block starts as the identity.

Every conv is a `WindowConv2d`: an nn.Conv2d that computes convs on inputs of at most 2x2 pixels
as per-pixel matmuls (layer3 and layer4 at 32 px, see `models/window_conv.py`); parameters and
keys are nn.Conv2d's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torchvision
from torch import nn

from dimcollapse import catalogue
from dimcollapse.catalogue import STEMS
from dimcollapse.errors import UserError
from dimcollapse.models.window_conv import use_window_convs

# name -> torchvision-style constructor(weights=None, zero_init_residual=True) -> ResNet
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": torchvision.models.resnet18,
    "resnet50": torchvision.models.resnet50,
}
catalogue.BACKBONES.check(BACKBONES)


def register_backbone(name: str, factory: Callable[..., nn.Module]) -> None:
    """Add `name` to BACKBONES and the catalogue (`--backbone` accepts it)."""
    catalogue.BACKBONES.register(name, BACKBONES, factory)


def build_backbone(name: str, *, stem: str = "imagenet", seed: int | None = None) -> nn.Module:
    """A randomly initialised torchvision ResNet without its classifier.

    Shape: (B, 3, H, W) -> (B, out_dim); `out_dim` (512 for resnet18, 2048 for resnet50) is read
    from the model's `fc.in_features` and stored as `.out_dim`. Also sets `.stem` and `.name`.
    With `seed`, the initial weights depend on it only (the global RNG is left untouched);
    without, they come from the global torch RNG.
    """
    if name not in BACKBONES:
        raise UserError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if stem not in STEMS:
        raise UserError(f"unknown stem {stem!r}; choose one of {', '.join(STEMS)}")
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = _build(name, stem)
    return model


def _build(name: str, stem: str) -> nn.Module:
    # A torchvision ResNet (no type stubs): its fc, conv1 and maxpool are replaced below.
    model: Any = BACKBONES[name](weights=None, zero_init_residual=True)
    out_dim = model.fc.in_features
    model.fc = nn.Identity()
    if stem == "cifar":
        # Same attribute names as torchvision's stem, so state_dict keys do not change.
        width = model.conv1.out_channels
        model.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    use_window_convs(model)  # <= 2x2-input convs as matmuls (32 px); same weights
    model.out_dim = out_dim
    model.stem = stem
    model.name = name
    return model
