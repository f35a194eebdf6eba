"""Per-sample parameters: torchvision's crop rule, probabilities, ranges, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision import transforms as T

from dimcollapse.data.hashing import key_hash, uniforms
from dimcollapse.views import VIEW_PRESETS, ViewSpec, sample_params
from dimcollapse.views.params import crop_boxes


def _torchvision_rule(u, height, width, scale, ratio):
    """RandomResizedCrop.get_params transcribed with its random draws replaced by u."""
    area = height * width
    lr0, lr1 = math.log(ratio[0]), math.log(ratio[1])
    for a in range(10):
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u[2 * a])
        aspect = math.exp(lr0 + (lr1 - lr0) * u[2 * a + 1])
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return [int(u[20] * (height - h + 1)), int(u[21] * (width - w + 1)), h, w]
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return [(height - h) // 2, (width - w) // 2, h, w]


@pytest.mark.parametrize("height, width, scale", [(32, 32, (0.08, 1.0)), (375, 500, (0.08, 1.0)),
                                                  (4, 100, (0.08, 1.0)), (100, 3, (0.5, 1.0)),
                                                  (7, 9, (0.9, 1.0))])
def test_crop_boxes_follow_torchvision_rule(height, width, scale):
    ratio = (3 / 4, 4 / 3)
    u = uniforms(key_hash(1, torch.arange(3000)), 22)
    got = crop_boxes(u, torch.full((3000,), height), torch.full((3000,), width), scale, ratio)
    expect = [_torchvision_rule(u[k].tolist(), height, width, scale, ratio) for k in range(3000)]
    assert got.tolist() == expect
    top, left, h, w = got.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= height).all() and (left + w <= width).all() and (h > 0).all()


def test_crop_box_distribution_matches_torchvision_sampler():
    torch.manual_seed(0)
    img = torch.zeros(3, 32, 32)
    tv = torch.tensor([T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
                       for _ in range(4000)], dtype=torch.float64)
    p = sample_params(ViewSpec(), seed=0, step=0, index=torch.arange(4000), view=0,
                      height=32, width=32)
    ours = p.boxes.double()
    for stat in (lambda b: b[:, 2] * b[:, 3] / 1024, lambda b: b[:, 3] / b[:, 2],
                 lambda b: b[:, 0], lambda b: b[:, 1]):
        a, b = stat(ours), stat(tv)
        assert abs(a.mean() - b.mean()) < 4 * math.hypot(a.std(), b.std()) / math.sqrt(4000)


@pytest.mark.parametrize("preset", list(VIEW_PRESETS))
def test_probabilities_and_ranges(preset):
    n = 20000
    for view, spec in enumerate(VIEW_PRESETS[preset]):
        p = sample_params(spec, seed=3, step=11, index=torch.arange(n), view=view,
                          height=64, width=48)
        for flag, prob in ((p.flip, spec.flip_p), (p.jitter, spec.jitter_p),
                           (p.gray, spec.gray_p), (p.blur, spec.blur_p),
                           (p.solarize, spec.solarize_p)):
            assert abs(flag.double().mean().item() - prob) < 0.015
        lo = torch.tensor([1 - spec.brightness, 1 - spec.contrast, 1 - spec.saturation,
                           -spec.hue], dtype=torch.float64)
        width = torch.tensor([2 * spec.brightness, 2 * spec.contrast, 2 * spec.saturation,
                              2 * spec.hue], dtype=torch.float64)
        assert (p.factors >= lo).all() and (p.factors <= lo + width).all()
        assert ((p.factors.mean(0) - (lo + width / 2)).abs() < 0.02 * width).all()
        assert (p.sigma >= spec.blur_sigma[0]).all() and (p.sigma <= spec.blur_sigma[1]).all()
        assert (p.order.sort(dim=1).values == torch.arange(4)).all()
        assert len({tuple(o) for o in p.order.tolist()}) == 24  # every order occurs


def test_parameters_depend_only_on_seed_step_index_view():
    spec = VIEW_PRESETS["imagenet"][0]

    def draw(seed=0, step=5, index=(3, 9, 4), view=0):
        p = sample_params(spec, seed=seed, step=step, index=torch.tensor(index), view=view,
                          height=50, width=60)
        return torch.cat([p.boxes.double(), p.factors, p.sigma[:, None],
                          p.order.double(), p.flip[:, None].double()], dim=1)

    base = draw()
    assert torch.equal(base, draw())
    assert torch.equal(base[1], draw(index=(9,))[0])  # batch composition does not matter
    for changed in (draw(seed=1), draw(step=6), draw(view=1)):
        assert not torch.equal(base, changed)
