"""The views knobs of collapse-factors (views.color_jitter_strength, views.crop_min_scale):
at their defaults the views are today's bit for bit; otherwise they scale the jitter ranges and
move the crop's minimum scale, through the config, `build` and the train flags."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from view_fakes import smooth_images

from dimcollapse import build
from dimcollapse.config import apply_overrides, preset_config, resolve
from dimcollapse.errors import UserError
from dimcollapse.reproduce import Arm, Budget
from dimcollapse.views import VIEW_PRESETS, TwoViews, build_views

MEAN, STD = (0.5, 0.45, 0.4), (0.25, 0.2, 0.3)


def _both(views, imgs):
    return views(imgs, torch.arange(len(imgs)), seed=3, step=5, mean=MEAN, std=STD)


@pytest.mark.parametrize("preset, size", [("cifar", 32), ("imagenet", 24)])
@pytest.mark.parametrize("kw", [{}, {"color_jitter_strength": 1.0},
                                {"color_jitter_strength": 1.0, "crop_min_scale": 0.08}])
def test_defaults_are_todays_views_bit_for_bit(preset, size, kw):
    imgs = smooth_images(24, 32, 32, seed=2)
    today = TwoViews(*VIEW_PRESETS[preset], size)  # what build_views returned before the knobs
    views = build_views(preset, size, **kw)
    assert views.specs == VIEW_PRESETS[preset]
    for a, b in zip(_both(today, imgs), _both(views, imgs), strict=True):
        assert torch.equal(a, b)


def test_strength_scales_every_jitter_range_and_changes_the_views():
    base = VIEW_PRESETS["cifar"][0]
    views = build_views("cifar", 32, color_jitter_strength=1.5)
    for spec in views.specs:
        assert (spec.brightness, spec.contrast, spec.saturation, spec.hue) == pytest.approx(
            (0.6, 0.6, 0.6, 0.15))  # SimCLR's s = 0.75: 0.8 s and 0.2 s
        assert dataclasses.replace(spec, brightness=base.brightness, contrast=base.contrast,
                                   saturation=base.saturation, hue=base.hue) == base
    imgs = smooth_images(24, 32, 32, seed=2)
    a = _both(build_views("cifar", 32), imgs)[0]
    b = _both(views, imgs)[0]
    assert not torch.equal(a, b)


def test_crop_min_scale_bounds_the_crop_area():
    views = build_views("imagenet", 16, crop_min_scale=0.5)
    assert [s.crop_scale for s in views.specs] == [(0.5, 1.0), (0.5, 1.0)]
    p = views.params(0, seed=0, step=0, index=torch.arange(400), height=32, width=32)
    area = (p.boxes[:, 2] * p.boxes[:, 3]).double() / (32 * 32)
    assert area.min() >= 0.5 - 0.08  # integer rounding of the box sides
    q = build_views("imagenet", 16).params(0, seed=0, step=0, index=torch.arange(400),
                                           height=32, width=32)
    assert ((q.boxes[:, 2] * q.boxes[:, 3]).double() / 1024).min() < 0.3


@pytest.mark.parametrize("over, where", [({"views.color_jitter_strength": -1.0}, "resolve"),
                                         ({"views.crop_min_scale": 0.0}, "resolve"),
                                         ({"views.crop_min_scale": 1.5}, "resolve"),
                                         ({"views.color_jitter_strength": 3.0}, "build")])
def test_bad_knobs_are_user_errors(over, where):
    cfg = apply_overrides(preset_config("cpu"), over)
    with pytest.raises(UserError):
        build.check_buildable(resolve(cfg))
    if where == "resolve":
        with pytest.raises(UserError):
            resolve(cfg)


def test_build_batches_threads_the_knobs(monkeypatch):
    seen = {}

    def fake_build_views(preset, size, **kw):
        seen.update(kw, preset=preset, size=size)
        return "views"

    # build.py imports both names at its top: patch them where build_batches looks them up
    monkeypatch.setattr(build, "build_views", fake_build_views)
    monkeypatch.setattr(build, "TwoViewBatches", lambda *a, **k: "batches")
    cfg = resolve(apply_overrides(preset_config("cpu"), {"views.color_jitter_strength": 0.5,
                                                         "views.crop_min_scale": 0.2,
                                                         "loop.batch_size": 2}))

    class Data:
        resident = True

        def __len__(self):
            return 4

    build.build_batches(cfg, Data(), rank=0, world_size=1, device=torch.device("cpu"),
                        start_step=0)
    assert seen == {"preset": "cifar", "size": 32, "color_jitter_strength": 0.5,
                    "crop_min_scale": 0.2}


def test_default_knobs_leave_an_arms_plan_unchanged():
    b = Budget("cpu", "/data")
    plan = b.plan(Arm("none"), 0)["config"]
    assert not any(k.startswith("views.c") for k in plan)  # old arms' plans stay equal
    b2 = dataclasses.replace(b, extra=(("views.crop_min_scale", 0.2),))
    assert b2.plan(Arm("none"), 0)["config"]["views.crop_min_scale"] == 0.2


def test_train_flags_set_the_knobs():
    from dimcollapse.cli import build_parser
    from dimcollapse.cli.train import FLAG_KEYS

    args = build_parser().parse_args(["train", "--preset", "cpu", "--out", "x",
                                      "--jitter-strength", "1.5", "--crop-min-scale", "0.2"])
    assert args.jitter_strength == 1.5 and args.crop_min_scale == 0.2
    assert FLAG_KEYS["jitter_strength"] == "views.color_jitter_strength"
    assert FLAG_KEYS["crop_min_scale"] == "views.crop_min_scale"
