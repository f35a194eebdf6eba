"""Helpers for view tests: smooth random images (realistic edges), fake datasets, PIL glue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dimcollapse.data import ImageDataset


def smooth_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 3, h, w): upsampled coarse noise plus fine noise, so crops and blurs see both
    flat regions and sharp edges (uniform noise alone hides interpolation errors)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(2, h // 4), max(2, w // 4), generator=g)
    img = F.interpolate(coarse, size=(h, w), mode="nearest") * 0.8
    img = img + 0.2 * torch.rand(n, 3, h, w, generator=g)
    return (img * 255).round().clamp(0, 255).to(torch.uint8)


def memory_dataset(n: int = 24, h: int = 32, w: int = 32, seed: int = 0) -> ImageDataset:
    return ImageDataset(name="fake", split="train", root=Path("."), classes=["a", "b", "c"],
                        targets=torch.arange(n) % 3, images=smooth_images(n, h, w, seed),
                        mean=(0.5, 0.45, 0.4), std=(0.25, 0.2, 0.3))


def to_pil(img: torch.Tensor) -> Image.Image:
    return Image.fromarray(img.permute(1, 2, 0).contiguous().numpy())


def from_pil(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)
