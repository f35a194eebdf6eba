"""The two-view presets and TwoViews, the batched augmentation pipeline.

`imagenet` is the paper's recipe (Appendix D; SPEC §4): RandomResizedCrop 224 bicubic, flip
0.5, colour jitter (0.4, 0.4, 0.2, 0.1) p 0.8, grayscale 0.2, Gaussian blur p 1.0 / 0.1,
solarisation p 0.0 / 0.2: the two views differ. `cifar` is SimCLR's CIFAR recipe (Chen et al.
2020, Appendix B.9: jitter strength 0.5, no blur): RandomResizedCrop 32 bilinear with scale
(0.08, 1), flip 0.5, jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grayscale 0.2; both views alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from dimcollapse import catalogue
from dimcollapse.errors import UserError
from dimcollapse.views import color, geometry
from dimcollapse.views.params import ViewParams, sample_params
from dimcollapse.views.spec import ViewSpec

_IMAGENET_1 = ViewSpec(interpolation="bicubic", saturation=0.2, blur_p=1.0, solarize_p=0.0)
_IMAGENET_2 = ViewSpec(interpolation="bicubic", saturation=0.2, blur_p=0.1, solarize_p=0.2)
_CIFAR = ViewSpec(interpolation="bilinear", crop_scale=(0.08, 1.0), saturation=0.4, blur_p=0.0,
                  solarize_p=0.0)

VIEW_PRESETS: dict[str, tuple[ViewSpec, ViewSpec]] = {
    "imagenet": (_IMAGENET_1, _IMAGENET_2),
    "cifar": (_CIFAR, _CIFAR),
}
catalogue.VIEW_PRESETS.check(VIEW_PRESETS)


def register_view_preset(name: str, view1: ViewSpec, view2: ViewSpec) -> None:
    """Add `name` to VIEW_PRESETS and the catalogue (`--views` accepts it)."""
    catalogue.VIEW_PRESETS.register(name, VIEW_PRESETS, (view1, view2))


class TwoViews:
    """Two augmentation distributions at one output size, applied to whole batches.

    All ops run on the device of the input batch; per-sample parameters come from
    `params.sample_params`, i.e. from (seed, step, dataset index, view) only.
    mean/std: RGB normalisation; None means "the dataset's" (callers pass it at apply time).
    """

    def __init__(self, view1: ViewSpec, view2: ViewSpec, image_size: int, *,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        if image_size < 8:
            raise UserError(f"image size {image_size} is too small; use at least 8 pixels")
        self.specs = (view1, view2)
        self.image_size = int(image_size)
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)

    def params(self, view: int, *, seed: int, step: int, index: torch.Tensor,
               height, width) -> ViewParams:
        return sample_params(self.specs[view], seed=seed, step=step, index=index, view=view,
                             height=height, width=width)

    def crop(self, x: torch.Tensor, p: ViewParams, view: int) -> torch.Tensor:
        """Resized crop + flip of float images in [0, 1]: (b, 3, H, W) -> (b, 3, S, S).

        Clamped to [0, 1] (bicubic overshoots; PIL's uint8 output clamps too)."""
        out = geometry.resized_crop(x, p.boxes, p.flip, self.image_size,
                                    self.specs[view].interpolation)
        return out.clamp_(0.0, 1.0)

    def finish(self, x: torch.Tensor, p: ViewParams, view: int, mean, std) -> torch.Tensor:
        """Colour jitter, grayscale, blur, solarise, normalise: (b, 3, S, S) float in [0, 1].

        Works in place on x (the crop's fresh buffer); returns a new normalised tensor."""
        spec = self.specs[view]
        if spec.jitter_p > 0:
            color.color_jitter_(x, p.factors, p.order, p.jitter)
        if spec.gray_p > 0:
            color.where_samples_(p.gray, color.to_grayscale3, x)
        if spec.blur_p > 0:
            color.where_samples_(p.blur, geometry.gaussian_blur, x, p.sigma,
                                 spec.blur_kernel_size(self.image_size))
        if spec.solarize_p > 0:
            color.where_samples_(p.solarize, color.solarize, x, spec.solarize_threshold)
        return normalize(x, self.mean or mean, self.std or std)

    def apply(self, x: torch.Tensor, index: torch.Tensor, *, seed: int, step: int, view: int,
              mean=None, std=None) -> torch.Tensor:
        """View `view` of full images x: float [0, 1] (b, 3, H, W) -> normalised (b, 3, S, S)."""
        p = self.params(view, seed=seed, step=step, index=index, height=x.shape[-2],
                        width=x.shape[-1])
        return self.finish(self.crop(x, p, view), p, view, mean, std)

    def __call__(self, images: torch.Tensor, index: torch.Tensor, *, seed: int, step: int,
                 mean=None, std=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views of a uint8 batch (b, 3, H, W) on any device -> two float (b, 3, S, S)."""
        x = images.to(torch.float32).div_(255.0)
        return (self.apply(x, index, seed=seed, step=step, view=0, mean=mean, std=std),
                self.apply(x, index, seed=seed, step=step, view=1, mean=mean, std=std))

    def from_crops(self, crops: torch.Tensor, index: torch.Tensor, *, seed: int, step: int,
                   view: int, mean=None, std=None) -> torch.Tensor:
        """Streaming path: finish uint8 crops (b, 3, S, S) already cut by `crop_pil` (no flip).

        The flip and the colour ops use the same parameters as the resident path."""
        p = self.params(view, seed=seed, step=step, index=index, height=1, width=1)
        x = crops.to(torch.float32).div_(255.0)
        flip = p.flip.to(x.device)[:, None, None, None]
        x = torch.where(flip, x.flip(-1), x)
        return self.finish(x, p, view, mean, std)

    def __repr__(self) -> str:
        return f"TwoViews(size={self.image_size}, view1={self.specs[0]}, view2={self.specs[1]})"


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """(x - mean) / std per RGB channel. Shape: (b, 3, H, W) -> same."""
    if mean is None or std is None:
        raise ValueError("normalisation needs mean and std (the dataset's or the views')")
    inv = 1.0 / torch.tensor(std, dtype=torch.float64)
    scale = inv.to(dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    shift = (-torch.tensor(mean, dtype=torch.float64) * inv).to(x.dtype).to(x.device)
    # x / std - mean / std; mul + add_ is ~3x faster on CPU than a broadcast addcmul.
    return (x * scale).add_(shift.view(1, 3, 1, 1))


def build_views(preset: str, image_size: int | None = None, *, mean=None, std=None,
                color_jitter_strength: float = 1.0,
                crop_min_scale: float | None = None) -> TwoViews:
    """TwoViews of preset `preset` (a key of VIEW_PRESETS) at `image_size` pixels.

    image_size default: 224 for imagenet, 32 for cifar. color_jitter_strength: SimCLR's
    strength s relative to the preset's (brightness, contrast, saturation and hue of both views
    times it; the cifar preset is SimCLR's s = 0.5, so 2.0 is s = 1). crop_min_scale: the
    crop's minimum area fraction (None: the preset's). The defaults return the preset's own
    ViewSpecs, so the views are the preset's bit for bit.
    """
    if preset not in VIEW_PRESETS:
        raise UserError(f"unknown view preset {preset!r}; choose one of {', '.join(VIEW_PRESETS)}")
    if image_size is None:
        image_size = 224 if preset == "imagenet" else 32
    v1, v2 = (adjust_spec(v, color_jitter_strength, crop_min_scale) for v in VIEW_PRESETS[preset])
    return TwoViews(v1, v2, image_size, mean=mean, std=std)


def adjust_spec(spec: ViewSpec, color_jitter_strength: float = 1.0,
                crop_min_scale: float | None = None) -> ViewSpec:
    """`spec` with its jitter scaled by `color_jitter_strength` and its crop's minimum scale
    replaced; the same object when both are the defaults (1.0, None)."""
    changes: dict = {}
    if color_jitter_strength != 1.0:
        s = float(color_jitter_strength)
        changes.update(brightness=spec.brightness * s, contrast=spec.contrast * s,
                       saturation=spec.saturation * s, hue=spec.hue * s)
    if crop_min_scale is not None:
        changes["crop_scale"] = (float(crop_min_scale), spec.crop_scale[1])
    if not changes:
        return spec
    if max(changes.get(k, 0.0) for k in ("brightness", "contrast", "saturation")) > 1:
        # factors ~ U[1 - b, 1 + b] must stay >= 0 (torchvision clamps; we refuse instead)
        raise UserError(f"--jitter-strength {color_jitter_strength:g} makes a jitter range "
                        "exceed 1 (negative brightness/contrast/saturation factors): pass a "
                        "smaller strength")
    try:
        return dataclasses.replace(spec, **changes)
    except ValueError as err:  # e.g. hue beyond 0.5, a minimum scale above the maximum
        raise UserError(f"views: {err}: pass a smaller --jitter-strength or a --crop-min-scale "
                        f"in (0, {spec.crop_scale[1]:g}]") from None
