"""Convolutions on inputs of at most 2x2 pixels, computed as one matmul per output pixel.

With the `imagenet` stem on 32x32 images ResNet's layer3 runs at 2x2 and layer4 at 1x1: most
taps of every 3x3 kernel then see padding only. oneDNN's CPU backward still does the full 3x3
work and was the largest cost of a `cpu`-preset step. Measured at batch 256 in bf16, forward +
backward (`bench/bench_train.py` measures the whole step):

| conv (in -> out, input, stride) | nn.Conv2d | per-pixel matmuls |
|---|---|---|
| 512 -> 512, 1x1, 1 | 15.9 ms | 2.1 ms |
| 256 -> 512, 2x2, 2 | 12.3 ms | 3.1 ms |
| 256 -> 256, 2x2, 1 | 10.2 ms | 6.5 ms |
| 128 -> 256, 4x4, 2 | 5.8 ms | 5.9 ms (so larger inputs keep nn.Conv2d) |

Output pixel (i, j) is exactly the dot product of the input window it overlaps with the
matching kernel window (rows r0 = i s_h - p_h ... r0 + k_h, clipped to the input):

    y[n, o, i, j] = sum_{c, r, t in window} x[n, c, r, t] * W[o, c, r - r0, t - t0] (+ b[o])

Taps that see only padding get a zero gradient either way, so values and gradients equal
nn.Conv2d's up to summation order (tested in float64). Parameters and state_dict keys are
nn.Conv2d's, so checkpoints are interchangeable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MAX_INPUT_PIXELS = 4  # H x W at or below which the per-pixel path is used (2x2)


class WindowConv2d(nn.Conv2d):
    """nn.Conv2d with a per-output-pixel matmul path for inputs of <= 2x2 pixels.

    Shape: (N, C, H, W) -> (N, O, H_o, W_o), in channels_last layout on the matmul path.
    """

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        windows = self._windows(x)
        if windows is None:
            return super()._conv_forward(x, weight, bias)
        (n, h_out, w_out) = x.shape[0], len(windows), len(windows[0])
        pixels = [
            F.linear(x[:, :, rows, cols].flatten(1), weight[:, :, k_rows, k_cols].flatten(1), bias)
            for row in windows
            for (rows, cols, k_rows, k_cols) in row
        ]  # each (N, O)
        y = torch.stack(pixels, dim=1).view(n, h_out, w_out, self.out_channels)
        return y.permute(0, 3, 1, 2)

    def _windows(self, x: torch.Tensor) -> list[list[tuple[slice, ...]]] | None:
        """Per output pixel (input rows, input cols, kernel rows, kernel cols), or None to use
        nn.Conv2d (larger inputs, groups, dilation, non-zero padding modes)."""
        if (x.dim() != 4 or x.shape[2] * x.shape[3] > MAX_INPUT_PIXELS or self.groups != 1
                or self.padding_mode != "zeros" or isinstance(self.padding, str)
                or self.dilation != (1, 1)):
            return None
        axes = []
        for size, k, s, p in zip(x.shape[2:], self.kernel_size, self.stride, self.padding,
                                 strict=True):
            spans = []
            for i in range((size + 2 * p - k) // s + 1):
                start = i * s - p
                lo, hi = max(start, 0), min(start + k, size)
                if lo >= hi:
                    return None  # a window entirely in the padding: leave it to nn.Conv2d
                spans.append((slice(lo, hi), slice(lo - start, hi - start)))
            axes.append(spans)
        rows, cols = axes
        return [[(r, c, kr, kc) for (c, kc) in cols] for (r, kr) in rows]


def use_window_convs(model: nn.Module) -> nn.Module:
    """Make every plain nn.Conv2d in `model` a WindowConv2d, in place; returns `model`.

    Only the class changes (same parameters, buffers and state_dict keys), which is why this
    swaps `__class__` instead of rebuilding the modules.
    """
    for module in model.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = WindowConv2d
    return model


def use_plain_convs(model: nn.Module) -> nn.Module:
    """Undo `use_window_convs`, in place (benchmarks of torchvision's own convs; tests)."""
    for module in model.modules():
        cls = type(module)  # not `type(module) is`: that narrows module and rejects the swap
        if cls is WindowConv2d:
            module.__class__ = nn.Conv2d
    return model
