"""Crop + resize + flip and Gaussian blur as per-sample separable matrices.

A separable linear image op is out = Wy @ x @ Wx^T with one (out x in) matrix per sample and
axis. Building the matrices costs O(b * out * in) on the CPU; applying them is two batched
matmuls, which are exact per sample (no cross-sample reduction), fast on CPU and GPU, and need
no per-sample Python loop. The weights are the antialiased (PIL-style) resampling filters that
torchvision's `resized_crop(..., antialias=True)` uses, so a crop equals torchvision's within
float rounding (tests/views/test_ops.py).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F


def _bilinear(x: torch.Tensor) -> torch.Tensor:
    return (1.0 - x.abs()).clamp(min=0.0)


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    # Keys cubic with a = -0.5 (PIL's and torch's antialiased bicubic).
    a = -0.5
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


_FILTERS = {"bilinear": (_bilinear, 1.0), "bicubic": (_bicubic, 2.0)}  # (filter, support)


def resize_matrices(in_size: int, start: torch.Tensor, length: torch.Tensor, out_size: int,
                    interpolation: str) -> torch.Tensor:
    """Rows: output pixels; columns: input pixels of a 1-D antialiased crop-and-resize.

    Output pixel o of the segment [start, start + length) resized to out_size samples the
    filter, stretched by the downscale factor (antialiasing), around centre
    start + (o + 0.5) * length / out_size, over the inputs inside the segment, normalised to
    sum 1 (PIL's / torch's `_upsample_*_aa` rule). Only the band of taps each output can reach
    is evaluated, then scattered into the dense matrix.
    Shape: start, length LongTensor [b] -> float64 [b, out_size, in_size].
    """
    filt, support = _FILTERS[interpolation]
    b = len(start)
    start = start.to(torch.float64)[:, None, None]
    length = length.to(torch.float64)[:, None, None]
    scale = length / out_size
    stretch = scale.clamp(min=1.0)
    reach = support * stretch
    taps = int(math.ceil(2 * support * float(stretch.max()))) + 2 if b else 1
    o = torch.arange(out_size, dtype=torch.float64)[None, :, None]
    centre = scale * (o + 0.5)  # in crop coordinates
    lo = torch.trunc(centre - reach + 0.5).clamp(min=0.0)
    hi = torch.minimum(torch.trunc(centre + reach + 0.5), length)
    q = lo + torch.arange(taps, dtype=torch.float64)  # [b, out, taps], crop coordinates
    w = filt((q - centre + 0.5) / stretch) * (q < hi)
    w = w / w.sum(dim=2, keepdim=True)
    col = (q + start).clamp(max=in_size - 1).to(torch.int64)  # masked taps add 0 anywhere
    m = torch.zeros(b, out_size, in_size, dtype=torch.float64)
    return m.scatter_add_(2, col, w)


def apply_separable(x: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor, *,
                    clamp_between: bool = False) -> torch.Tensor:
    """out[n, c] = wy[n] @ x[n, c] @ wx[n]^T.  Shape: (b,C,H,W), (b,S,H), (b,T,W) -> (b,C,S,T).

    Two plain batched matmuls (no broadcasting, which is slow on CPU): x-axis first on
    (b, C*H, W), then y-axis with wy repeated per channel. clamp_between clips the x-pass
    result to [0, 1], as PIL (and torch on uint8) do with their 8-bit intermediate image: it
    stops the overshoot of bicubic lobes from compounding over the two passes.
    """
    b, c, h, w = x.shape
    s, t = wy.shape[1], wx.shape[1]
    y = torch.bmm(x.reshape(b, c * h, w), wx.transpose(1, 2)).view(b * c, h, t)
    if clamp_between:
        y = y.clamp_(0.0, 1.0)
    return torch.bmm(wy.repeat_interleave(c, dim=0), y).view(b, c, s, t)


def _clamped_coords(start: torch.Tensor, length: torch.Tensor, size: int, n_in: int,
                    flip: torch.Tensor) -> torch.Tensor:
    """grid_sample x-or-y coordinates (align_corners=False units) of a crop-then-resize.

    Source pixel of output o: start + (o + 0.5) * length / size - 0.5, clamped into the crop
    (crop-then-resize never reads outside the box). Shape: [b] -> float32 [b, size]."""
    start, length = start.to(torch.float32)[:, None], length.to(torch.float32)[:, None]
    o = torch.arange(size, dtype=torch.float32)[None, :]
    src = torch.minimum(torch.maximum(start + (o + 0.5) * (length / size) - 0.5, start),
                        start + length - 1.0)
    src = torch.where(flip[:, None], src.flip(1), src)
    return (src + 0.5) * (2.0 / n_in) - 1.0


def _crop_grid_sample(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor,
                      size: int) -> torch.Tensor:
    """Bilinear crop-and-upsample (every box side <= size) with one grid_sample.

    When upsampling, the antialiased filter is the plain bilinear one (support 1, no stretch)
    and its edge renormalisation equals clamping the source coordinate into the box, so this
    equals `resize_matrices(..., "bilinear")` up to float rounding (tested), at half the cost.
    """
    _, _, height, width = x.shape
    gx = _clamped_coords(boxes[:, 1], boxes[:, 3], size, width, flip)
    gy = _clamped_coords(boxes[:, 0], boxes[:, 2], size, height, torch.zeros_like(flip))
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    return F.grid_sample(x, grid.to(x.device), mode="bilinear", padding_mode="border",
                         align_corners=False)


def _crop_matrices(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int,
                   interpolation: str) -> torch.Tensor:
    _, _, height, width = x.shape
    wy = resize_matrices(height, boxes[:, 0], boxes[:, 2], size, interpolation)
    wx = resize_matrices(width, boxes[:, 1], boxes[:, 3], size, interpolation)
    wx = torch.where(flip[:, None, None], wx.flip(1), wx)
    return apply_separable(x, wy.to(device=x.device, dtype=x.dtype),
                           wx.to(device=x.device, dtype=x.dtype),
                           clamp_between=interpolation == "bicubic")


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int,
                 interpolation: str) -> torch.Tensor:
    """Crop boxes (top, left, h, w) of float images, resize to size x size, flip where asked.

    Shape: x float (b, C, H, W); boxes LongTensor (b, 4); flip BoolTensor (b,) -> (b, C, S, S).
    Equals torchvision `hflip?(resized_crop(img, *box, size, interpolation, antialias=True))`
    on float images, except that bicubic clips the intermediate (horizontal-pass) image to
    [0, 1] as PIL does; callers clamp the result to [0, 1] as PIL's uint8 output is.
    The method is chosen per sample from its own box (bilinear upsampling: grid_sample;
    otherwise: antialiased matrices), so a sample's output never depends on its batch.
    """
    boxes, flip = boxes.cpu(), flip.cpu()
    fast = (boxes[:, 2] <= size) & (boxes[:, 3] <= size) if interpolation == "bilinear" \
        else torch.zeros(len(boxes), dtype=torch.bool)
    if bool(fast.all()):
        return _crop_grid_sample(x, boxes, flip, size)
    if not bool(fast.any()):
        return _crop_matrices(x, boxes, flip, size, interpolation)
    out = x.new_empty(x.shape[0], x.shape[1], size, size)
    parts = ((fast, functools.partial(_crop_grid_sample, size=size)),
             (~fast, functools.partial(_crop_matrices, size=size, interpolation=interpolation)))
    for sel, crop in parts:
        idx = torch.nonzero(sel).squeeze(1)
        out.index_copy_(0, idx.to(x.device),
                        crop(x.index_select(0, idx.to(x.device)), boxes[idx], flip[idx]))
    return out


def gaussian_matrices(size: int, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """1-D Gaussian blur with reflect padding as a matrix, per sample.

    Taps at offsets -r..r (r = kernel_size // 2) weighted exp(-t^2 / (2 sigma^2)), normalised
    (torchvision's `gaussian_blur` kernel); out-of-range taps reflect without repeating the edge
    (torch `pad(mode="reflect")`). Shape: sigma float [b] -> float64 [b, size, size].
    """
    r = kernel_size // 2
    if r >= size:
        raise ValueError(f"blur kernel {kernel_size} is too large for {size}-pixel images")
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t[None, :] / sigma.to(torch.float64)[:, None]) ** 2)
    k = k / k.sum(dim=1, keepdim=True)  # [b, K]
    src = torch.arange(size)[:, None] + torch.arange(-r, r + 1)[None, :]  # [size, K]
    src = torch.where(src < 0, -src, src)
    src = torch.where(src > size - 1, 2 * (size - 1) - src, src)
    m = torch.zeros(len(sigma), size, size, dtype=torch.float64)
    m.scatter_add_(2, src.expand(len(sigma), -1, -1), k[:, None, :].expand(-1, size, -1))
    return m


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Per-sample Gaussian blur (same sigma on both axes). Shape: (b,C,H,W), (b,) -> (b,C,H,W)."""
    _, _, height, width = x.shape
    my = gaussian_matrices(height, sigma.cpu(), kernel_size).to(device=x.device, dtype=x.dtype)
    mx = my if width == height else \
        gaussian_matrices(width, sigma.cpu(), kernel_size).to(device=x.device, dtype=x.dtype)
    return apply_separable(x, my, mx)
