"""Per-sample colour ops on float images in [0, 1], batched. Shape: (b, 3, H, W) -> same.

Definitions follow torchvision's tensor ops (`torchvision.transforms.functional`): blends
clamp to [0, 1]; grayscale is ITU-R 601-2 luma (0.2989 R + 0.587 G + 0.114 B); contrast blends
towards the per-image mean luma; saturation towards the luma image; hue rotates the HSV hue.
Factors are per-sample tensors of shape (b,). Functions ending in `_` work in place (the
pipeline owns its buffers); the others return new tensors.
"""

from __future__ import annotations

import torch

LUMA = (0.2989, 0.587, 0.114)


def _col(f: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return f.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma, one channel. Shape: (b, 3, H, W) -> (b, 1, H, W)."""
    r, g, b = x.unbind(1)
    return (r * LUMA[0]).add_(g, alpha=LUMA[1]).add_(b, alpha=LUMA[2]).unsqueeze(1)


def blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """clamp(f * x + (1 - f) * other, 0, 1), computed as a lerp from `other` to x."""
    return torch.lerp(other.expand_as(x), x, _col(factor, x)).clamp_(0.0, 1.0)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (x * _col(factor, x)).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    # Mean luma = luma of the channel means (linearity): one reduction instead of two passes.
    m = x.mean(dim=(2, 3))
    mean = (m[:, 0] * LUMA[0] + m[:, 1] * LUMA[1] + m[:, 2] * LUMA[2]).view(-1, 1, 1, 1)
    return blend(x, mean, factor)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return blend(x, grayscale(x), factor)


_HUE_OFFSETS = (5.0, 3.0, 1.0)  # hexcone phase of R, G, B


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by `shift` turns (in [-0.5, 0.5]), keeping HSV saturation and value.

    RGB -> (hue in sixths H', chroma C, value V) -> RGB without forming S: with V and C fixed,
    channel n (R: 5, G: 3, B: 1) = V - C * clamp(2 - |k - 2|, 0, 1), k = (n + H') mod 6
    (the closed form of the hexcone model). Gray pixels (C = 0) come back exactly.
    Branch-free: the "which channel is the maximum" masks are 0/1 floats made with sign()
    (bool masks in float arithmetic are ~25x slower on CPU), the modulo uses floor().
    """
    r, g, b = x.unbind(1)
    v = x.amax(dim=1)
    c = v - x.amin(dim=1)
    m_r = torch.sign(r - v).add_(1.0)  # 1 where R is the maximum (R wins ties, as PIL)
    m_g = torch.sign(g - v).add_(1.0).mul_(1.0 - m_r)  # then G
    m_b = 1.0 - m_r - m_g
    # H' * C = (G - B), (B - R) + 2C or (R - G) + 4C by the maximal channel.
    num = m_r * (g - b) + m_g * (b - r).add_(c, alpha=2.0) + m_b * (r - g).add_(c, alpha=4.0)
    # C, clamped where C = 0 (then num = 0 too). Not `c + 1 - sign(c)`: for 0 < C < 6e-8 the
    # float32 sum 1 + C rounds to 1 and the divisor becomes 0 (inf/NaN views).
    h = num.div_(c.clamp_min(1e-12))
    h.add_(_col(shift, x)[:, 0], alpha=6.0)
    k = h.unsqueeze(1) + torch.tensor(_HUE_OFFSETS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    k = k.sub_(torch.floor(k * (1.0 / 6.0)).mul_(6.0))  # mod 6, for negative k too
    t = k.sub_(2.0).abs_().neg_().add_(2.0).clamp_(0.0, 1.0)
    return torch.addcmul(v.unsqueeze(1), c.unsqueeze(1), t, value=-1.0)


def to_grayscale3(x: torch.Tensor) -> torch.Tensor:
    """Luma repeated on 3 channels (torchvision `rgb_to_grayscale(num_output_channels=3)`)."""
    return grayscale(x).expand_as(x)


def solarize(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Invert pixels >= threshold (1 - x), as torchvision/PIL `solarize`."""
    return torch.where(x >= threshold, 1.0 - x, x)


JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def _subset_apply_(x: torch.Tensor, idx: torch.Tensor, fn, *args) -> None:
    x.index_copy_(0, idx, fn(x.index_select(0, idx), *args))


def color_jitter_(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor,
                  apply: torch.Tensor) -> torch.Tensor:
    """torchvision ColorJitter per sample, in place, each sample with its own op order.

    factors (b, 4): brightness, contrast, saturation, hue shift; order (b, 4): op ids in the
    order applied (torchvision `fn_idx`); apply (b,) bool: which samples are jittered.
    At each of the 4 positions, each op runs once on the samples that have it there.
    """
    order, apply = order.cpu(), apply.cpu()
    factors = factors.to(device=x.device, dtype=x.dtype)
    for pos in range(4):
        for op_id, op in enumerate(JITTER_OPS):
            idx = torch.nonzero(apply & (order[:, pos] == op_id)).squeeze(1)
            if idx.numel():
                idx = idx.to(x.device)
                _subset_apply_(x, idx, op, factors.index_select(0, idx)[:, op_id])
    return x


def color_jitter(x, factors, order, apply):
    """Out-of-place `color_jitter_`."""
    return color_jitter_(x.clone(), factors, order, apply)


def where_samples_(mask: torch.Tensor, fn, x: torch.Tensor, *args) -> torch.Tensor:
    """Apply fn, in place, to the samples where mask (b,) is True (fn sees only those).

    Tensor `args` with a leading dimension b are indexed alongside x; others pass as they are.
    """
    idx = torch.nonzero(mask.cpu()).squeeze(1)
    if idx.numel() == 0:
        return x
    sub = [a[idx] if isinstance(a, torch.Tensor) and a.dim() and a.shape[0] == x.shape[0]
           else a for a in args]
    _subset_apply_(x, idx.to(x.device), fn, *sub)
    return x
