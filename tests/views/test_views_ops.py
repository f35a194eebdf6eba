"""Each batched op against torchvision's per-image op with the same parameters.

Tolerances (pixel values in [0, 1] unless "levels" = 1/255 steps):
- vs torchvision on float tensors: 1e-5 (float32 rounding; our ops are the same formulas).
- vs torchvision on PIL images (uint8 arithmetic, rounding after every op): 1.01 levels for
  bilinear crops and brightness; 1.5 levels for contrast and saturation (PIL blends with a
  rounded luma image / an integer mean luma, an error amplified by |1 - factor| <= 0.8);
  0.55 for grayscale (PIL rounds); bicubic: 1.6 levels upsampling, 4 levels downsampling (PIL
  rounds its intermediate pass to 8 bits); hue: within 3
  levels for 90 % of pixels, mean < 0.8 level (PIL quantises H, S, V to 8 bits).
"""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode
from view_fakes import from_pil, smooth_images, to_pil

from dimcollapse.views import color, geometry, normalize

IM = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}
LEVEL = 1 / 255


def _boxes(n, h, w, seed=0, max_side=None):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        bh = int(torch.randint(1, (max_side or h) + 1, (1,), generator=g))
        bw = int(torch.randint(1, (max_side or w) + 1, (1,), generator=g))
        top = int(torch.randint(0, h - bh + 1, (1,), generator=g))
        left = int(torch.randint(0, w - bw + 1, (1,), generator=g))
        out.append([top, left, bh, bw])
    return torch.tensor(out)


def _tv_float_crop(x, box, size, interp, flip):
    """torchvision on a float tensor; bicubic as two 1-D passes clipped in between (as PIL)."""
    c = TF.crop(x, *box)
    if interp == "bicubic":
        c = TF.resize(c, [c.shape[1], size], IM[interp], antialias=True).clamp(0, 1)
    c = TF.resize(c, [size, size], IM[interp], antialias=True).clamp(0, 1)
    return TF.hflip(c) if flip else c


@pytest.mark.parametrize("interp", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [32, 20, 48])
def test_resized_crop_matches_torchvision_float(interp, size):
    x = smooth_images(40, 32, 36, seed=2).float() / 255
    boxes = _boxes(40, 32, 36, seed=size)
    flip = torch.arange(40) % 3 == 0
    ours = geometry.resized_crop(x, boxes, flip, size, interp).clamp(0, 1)
    ref = torch.stack([_tv_float_crop(x[k], boxes[k].tolist(), size, interp, flip[k])
                       for k in range(40)])
    assert (ours - ref).abs().max() < 1e-5


def test_crop_routes_agree_and_mixed_batch_equals_per_sample():
    x = smooth_images(16, 32, 32, seed=3).float() / 255
    boxes = _boxes(16, 32, 32, seed=4, max_side=20)  # upsampling to 24: grid_sample route
    boxes[::2] = torch.tensor([1, 0, 30, 31])  # downsampling to 24: matrix route
    flip = torch.arange(16) % 2 == 1
    size = 24
    mixed = geometry.resized_crop(x, boxes, flip, size, "bilinear")
    singles = torch.cat([geometry.resized_crop(x[k:k + 1], boxes[k:k + 1], flip[k:k + 1], size,
                                               "bilinear") for k in range(16)])
    assert torch.equal(mixed, singles)  # routing is per sample: batch-independent bits
    small = _boxes(16, 32, 32, seed=5, max_side=24)
    fast = geometry._crop_grid_sample(x, small, flip, size)
    slow = geometry._crop_matrices(x, small, flip, size, "bilinear")
    assert (fast - slow).abs().max() < 1e-5


@pytest.mark.parametrize("interp, size, tol", [("bilinear", 32, 1.01), ("bilinear", 12, 1.01),
                                               ("bicubic", 32, 1.6), ("bicubic", 12, 4.0)])
def test_resized_crop_close_to_torchvision_pil(interp, size, tol):
    imgs = smooth_images(32, 32, 32, seed=6)
    boxes = _boxes(32, 32, 32, seed=7)
    flip = torch.zeros(32, dtype=torch.bool)
    ours = geometry.resized_crop(imgs.float() / 255, boxes, flip, size, interp).clamp(0, 1)
    ref = torch.stack([from_pil(TF.resized_crop(to_pil(imgs[k]), *boxes[k].tolist(),
                                                [size, size], IM[interp]))
                       for k in range(32)]).float() / 255
    diff = (ours - ref).abs() / LEVEL
    assert diff.max() <= tol and diff.mean() < 0.35


OPS = [(color.adjust_brightness, TF.adjust_brightness, 1.01),
       (color.adjust_contrast, TF.adjust_contrast, 1.5),
       (color.adjust_saturation, TF.adjust_saturation, 1.5)]


@pytest.mark.parametrize("ours, ref, pil_tol", OPS)
def test_blend_ops_match_torchvision(images32, ours, ref, pil_tol):
    x = images32.float() / 255
    f = torch.linspace(0.0, 1.8, len(x))
    out = ours(x, f)
    expect = torch.stack([ref(x[k], float(f[k])) for k in range(len(x))])
    assert (out - expect).abs().max() < 1e-5
    pil = torch.stack([from_pil(ref(to_pil(images32[k]), float(f[k])))
                       for k in range(len(x))]).float() / 255
    assert (out - pil).abs().max() / LEVEL <= pil_tol


def test_hue_matches_torchvision(images32):
    x = images32.float() / 255
    x[0, :, :4] = 0.3  # gray pixels: hue undefined, must come back unchanged
    x[1, 1] = x[1, 0]  # ties between R and G
    shift = torch.linspace(-0.5, 0.5, len(x))
    out = color.adjust_hue(x, shift)
    expect = torch.stack([TF.adjust_hue(x[k], float(shift[k])) for k in range(len(x))])
    assert (out - expect).abs().max() < 1e-5
    assert torch.equal(out[0, :, :4], x[0, :, :4])
    # PIL: the preset's range; its 8-bit HSV (a hue step of 1/256 turn moves a saturated
    # channel by ~6 levels) is coarse, while a wrong sign or half the shift costs 5-20 levels.
    shift = torch.linspace(-0.1, 0.1, len(x))
    out = color.adjust_hue(images32.float() / 255, shift)
    pil = torch.stack([from_pil(TF.adjust_hue(to_pil(images32[k]), float(shift[k])))
                       for k in range(len(x))]).float() / 255
    diff = (out - pil).abs() / LEVEL
    assert diff.mean() < 0.8 and (diff <= 3).float().mean() > 0.9


def test_grayscale_solarize_normalize(images32):
    x = images32.float() / 255
    assert (color.to_grayscale3(x) - TF.rgb_to_grayscale(x, 3)).abs().max() < 1e-6
    pil_gray = torch.stack([from_pil(TF.rgb_to_grayscale(to_pil(i), 3)) for i in images32])
    assert (color.to_grayscale3(x) - pil_gray / 255).abs().max() / LEVEL <= 0.55
    thr = 128 / 255
    assert torch.equal(color.solarize(x, thr), TF.solarize(x, thr))
    pil_sol = torch.stack([from_pil(TF.solarize(to_pil(i), 128)) for i in images32]) / 255
    assert (color.solarize(x, thr) - pil_sol).abs().max() < 1e-6
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    assert (normalize(x, mean, std) - TF.normalize(x, mean, std)).abs().max() < 1e-5


@pytest.mark.parametrize("kernel", [3, 9, 23])
def test_gaussian_blur_matches_torchvision(kernel):
    x = smooth_images(12, 40, 36, seed=8).float() / 255
    sigma = torch.linspace(0.1, 2.0, 12, dtype=torch.float64)
    out = geometry.gaussian_blur(x, sigma, kernel)
    expect = torch.stack([TF.gaussian_blur(x[k], [kernel, kernel], [float(sigma[k])] * 2)
                          for k in range(12)])
    assert (out - expect).abs().max() < 1e-5


def test_color_jitter_applies_each_samples_own_order(images32):
    x = images32[:24].float() / 255
    g = torch.Generator().manual_seed(0)
    factors = torch.stack([torch.rand(24, generator=g) * 0.8 + 0.6 for _ in range(3)]
                          + [torch.rand(24, generator=g) * 0.2 - 0.1], dim=1).double()
    order = torch.stack([torch.randperm(4, generator=g) for _ in range(24)])
    apply = torch.arange(24) % 5 != 0
    out = color.color_jitter(x, factors, order, apply)
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for k in range(24):
        img = x[k]
        if apply[k]:
            for op_id in order[k].tolist():
                img = ops[op_id](img, float(factors[k, op_id]))
        assert (out[k] - img).abs().max() < 1e-5, k
    assert torch.equal(out[0], x[0])  # not jittered: untouched
    fixed = color.color_jitter(x, factors, torch.arange(4).expand(24, 4), apply)
    assert (fixed - out).abs().max() > 1e-3  # the order matters, so the test can fail


def test_hue_is_finite_for_near_gray_pixels():
    """Regression: chroma of one float32 ulp (C ~ 6e-8 near 0.7, far less near 0) once made
    the divisor `C + 1 - sign(C)` round to 0 and produced NaN views."""
    x = torch.full((4, 3, 8, 8), 0.7)
    x[0, 1] = torch.nextafter(torch.tensor(0.7), torch.tensor(1.0))  # C = 1 ulp at 0.7
    x[1] = 1e-30
    x[1, 2] = 2e-30  # C far below any fixed epsilon
    x[2, 0, :4] = torch.nextafter(torch.tensor(0.7), torch.tensor(0.0))
    shift = torch.tensor([0.1, -0.3, 0.5, 0.0])
    out = color.adjust_hue(x, shift)
    assert torch.isfinite(out).all()
    expect = torch.stack([TF.adjust_hue(x[k], float(shift[k])) for k in range(4)])
    assert (out - expect).abs().max() < 1e-6
