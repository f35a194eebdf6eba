"""Per-sample augmentation parameters as pure functions of (seed, step, sample index, view).

Each parameter reads its own fixed stream ids of the counter RNG (`data.hashing`), so adding an
op never changes the draws of the others, and a sample's parameters never depend on the rest of
its batch. Parameters are computed on the CPU in float64 (cheap: ~36 numbers per sample) and
are identical on every device and in every process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dimcollapse.data.hashing import key_hash, uniforms
from dimcollapse.views.spec import ViewSpec

VIEW_DOMAIN = 0x71E35  # separates augmentation draws from permutations and subsets
CROP_ATTEMPTS = 10  # as torchvision's RandomResizedCrop.get_params
# Stream ids (fixed forever: changing them changes every view).
_S_CROP = 0  # 2 per attempt (area, log-ratio) for 10 attempts, then 2 for the position
_S_FLIP = 22
_S_JITTER = 23
_S_FACTORS = 24  # brightness, contrast, saturation, hue
_S_ORDER = 28  # 4 keys whose argsort is the jitter order
_S_GRAY = 32
_S_BLUR = 33
_S_SIGMA = 34
_S_SOLARIZE = 35
N_STREAMS = 36


@dataclass
class ViewParams:
    """Parameters of one view for b samples (CPU tensors).

    boxes: LongTensor [b, 4] (top, left, height, width) of the crop in source pixels.
    flip, jitter, gray, blur, solarize: BoolTensor [b] (op applied or not).
    factors: float64 [b, 4] = brightness, contrast, saturation factors and hue shift.
    order: LongTensor [b, 4], a permutation of (0 brightness, 1 contrast, 2 saturation, 3 hue):
        the order the jitter ops run in, as torchvision's ColorJitter `fn_idx`.
    sigma: float64 [b], the blur's standard deviation in pixels.
    """

    boxes: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor
    factors: torch.Tensor
    order: torch.Tensor
    gray: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor
    solarize: torch.Tensor

    def __len__(self) -> int:
        return len(self.flip)


def crop_boxes(u: torch.Tensor, height: torch.Tensor, width: torch.Tensor,
               scale: tuple[float, float], ratio: tuple[float, float]) -> torch.Tensor:
    """torchvision's RandomResizedCrop.get_params, vectorised, from given uniforms.

    u: float64 [b, 22] uniforms in (0, 1); height, width: LongTensor [b] source sizes.
    Returns LongTensor [b, 4] (top, left, h, w). Same rule as torchvision: first of 10 attempts
    with area ~ U(scale) * H * W and log aspect ~ U(log ratio) that fits; else the centred crop
    of the closest allowed aspect ratio. Rounding is round-half-even, as Python's round.
    """
    b = u.shape[0]
    hf, wf = height.to(torch.float64)[:, None], width.to(torch.float64)[:, None]
    ua, ur = u[:, 0:2 * CROP_ATTEMPTS:2], u[:, 1:2 * CROP_ATTEMPTS:2]
    area = hf * wf * (scale[0] + (scale[1] - scale[0]) * ua)
    lr0, lr1 = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(lr0 + (lr1 - lr0) * ur)
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    ok = (w > 0) & (w <= wf) & (h > 0) & (h <= hf)
    first = torch.argmax(ok.to(torch.int64), dim=1)  # first True (0 when none; masked below)
    rows = torch.arange(b)
    w_ok, h_ok, any_ok = w[rows, first], h[rows, first], ok.any(dim=1)
    # Fallback: whole image clipped to the allowed aspect-ratio range, centred.
    hf1, wf1 = hf[:, 0], wf[:, 0]
    in_ratio = wf1 / hf1
    fb_w = torch.where(in_ratio < ratio[0], wf1,
                       torch.where(in_ratio > ratio[1], torch.round(hf1 * ratio[1]), wf1))
    fb_h = torch.where(in_ratio < ratio[0], torch.round(wf1 / ratio[0]), hf1)
    hh = torch.where(any_ok, h_ok, fb_h).to(torch.int64)
    ww = torch.where(any_ok, w_ok, fb_w).to(torch.int64)
    ui, uj = u[:, 2 * CROP_ATTEMPTS], u[:, 2 * CROP_ATTEMPTS + 1]
    top = torch.where(any_ok, torch.floor(ui * (height - hh + 1)).to(torch.int64),
                      (height - hh) // 2)
    left = torch.where(any_ok, torch.floor(uj * (width - ww + 1)).to(torch.int64),
                       (width - ww) // 2)
    return torch.stack([top, left, hh, ww], dim=1)


def sample_params(spec: ViewSpec, *, seed: int, step: int, index: torch.Tensor, view: int,
                  height: int | torch.Tensor, width: int | torch.Tensor) -> ViewParams:
    """Parameters of view `view` (0 or 1) for samples `index` (LongTensor [b]) at `step`.

    height/width: source image size (ints, or LongTensor [b] for mixed-size datasets).
    """
    index = index.to(torch.int64).cpu()
    b = len(index)
    key = key_hash(VIEW_DOMAIN, seed, step, view, index)
    u = uniforms(key, N_STREAMS)  # [b, 36]
    height = torch.as_tensor(height, dtype=torch.int64).expand(b)
    width = torch.as_tensor(width, dtype=torch.int64).expand(b)
    boxes = crop_boxes(u[:, _S_CROP:_S_FLIP], height, width, spec.crop_scale, spec.crop_ratio)
    lo = torch.tensor([1 - spec.brightness, 1 - spec.contrast, 1 - spec.saturation, -spec.hue],
                      dtype=torch.float64)
    hi = torch.tensor([1 + spec.brightness, 1 + spec.contrast, 1 + spec.saturation, spec.hue],
                      dtype=torch.float64)
    lo[:3] = lo[:3].clamp(min=0.0)  # torchvision clips factors at 0
    factors = lo + (hi - lo) * u[:, _S_FACTORS:_S_FACTORS + 4]
    order = torch.argsort(u[:, _S_ORDER:_S_ORDER + 4], dim=1, stable=True)
    s0, s1 = spec.blur_sigma
    return ViewParams(
        boxes=boxes,
        flip=u[:, _S_FLIP] < spec.flip_p,
        jitter=u[:, _S_JITTER] < spec.jitter_p,
        factors=factors,
        order=order,
        gray=u[:, _S_GRAY] < spec.gray_p,
        blur=u[:, _S_BLUR] < spec.blur_p,
        sigma=s0 + (s1 - s0) * u[:, _S_SIGMA],
        solarize=u[:, _S_SOLARIZE] < spec.solarize_p,
    )
