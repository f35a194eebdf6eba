"""The settings of `reproduce collapse-factors`: one factor at a time away from a preset.

A `Factor` is one knob of the recipe with the values a reviewer would try (issue 9 §2): the
colour-jitter strength s (x the preset's; the paper's mechanism 1, strong augmentation), the
crop's minimum scale, weight decay (the paper's 1e-6 and CIFAR recipes' 1e-4 / 5e-4), the
learning rate (x the preset's), SGD against LARS, and the stem (the ImageNet stem at 32 px
leaves 1x1 maps in layer4, so its 3x3 convs act as 1x1 convs; a CIFAR stem at 16 px leaves
2x2). `collapse_settings` turns the factors into `Setting`s: the baseline (the preset itself,
shared by every factor, trained once) and, per factor, each value other than the preset's.
Each setting is then trained for the arms of `catalogue.COLLAPSE_FACTOR_ARMS` (no projector and
the 2-layer projector) under the same budget. Torch-free except `_crop_min` (the view presets).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dimcollapse.catalogue import COLLAPSE_FACTORS
from dimcollapse.config import TrainConfig
from dimcollapse.errors import UserError
from dimcollapse.reproduce.budget import Budget

BASELINE = "baseline"


@dataclass(frozen=True)
class Factor:
    """One knob: its values, the config overrides of a value, and the baseline's value."""

    name: str
    title: str
    values: tuple[Any, ...]
    overrides: Callable[[Any, TrainConfig], dict[str, Any]]  # value, baseline config -> keys
    current: Callable[[TrainConfig], Any]  # the baseline's value of this knob
    show: Callable[[Any], str] = lambda v: f"{v:g}"  # value -> label and folder suffix


def _crop_min(cfg: TrainConfig) -> float | None:
    if cfg.views.crop_min_scale is not None:
        return cfg.views.crop_min_scale
    from dimcollapse.views import VIEW_PRESETS

    scales = {spec.crop_scale[0] for spec in VIEW_PRESETS[cfg.views.preset]}
    return scales.pop() if len(scales) == 1 else None  # two views with two scales: none equal



def _resolved_lr(cfg: TrainConfig) -> float:
    assert cfg.optim.lr is not None  # the baseline is a resolved config: lr is set
    return cfg.optim.lr


FACTORS: dict[str, Factor] = {
    "jitter": Factor("jitter", "colour-jitter strength (x the preset's: the cifar preset is "
                     "SimCLR's s = 0.5)", (0.5, 1.0, 1.5),
                     lambda v, c: {"views.color_jitter_strength": float(v)},
                     lambda c: c.views.color_jitter_strength),
    "crop": Factor("crop", "the random crop's minimum area fraction", (0.08, 0.2, 0.5),
                   lambda v, c: {"views.crop_min_scale": float(v)}, _crop_min),
    "weight-decay": Factor("weight-decay", "weight decay", (1e-6, 1e-4, 5e-4),
                           lambda v, c: {"optim.weight_decay": float(v)},
                           lambda c: c.optim.weight_decay),
    "lr": Factor("lr", "learning rate (x the preset's)", (0.3, 1.0, 3.0),
                 lambda v, c: {"optim.lr": float(v) * _resolved_lr(c)}, lambda c: 1.0,
                 lambda v: f"x{v:g}"),
    "optimizer": Factor("optimizer", "optimizer", ("sgd", "lars"),
                        lambda v, c: {"optim.name": v}, lambda c: c.optim.name, str),
    "stem": Factor("stem", "stem and image size", (("imagenet", 32), ("cifar", 16)),
                   lambda v, c: {"model.stem": v[0], "data.image_size": int(v[1])},
                   lambda c: (c.model.stem, c.data.image_size),
                   lambda v: f"{v[0]}{v[1]}"),
}
COLLAPSE_FACTORS.check(FACTORS)


def register_factor(factor: Factor) -> None:
    """Add a factor to FACTORS and the catalogue (collapse-factors then varies it too)."""
    COLLAPSE_FACTORS.register(factor.name, FACTORS, factor)


@dataclass(frozen=True)
class Setting:
    """One recipe of the target: the baseline (factor None) or one factor at one value."""

    factor: str | None
    value: Any
    label: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """Its folder name under DIR/runs/."""
        if self.factor is None:
            return BASELINE
        return f"{self.factor}-{FACTORS[self.factor].show(self.value)}"

    def budget(self, base: Budget) -> Budget:
        """`base` with this setting's overrides applied last (after any --set)."""
        return dataclasses.replace(base, extra=(*base.extra, *self.overrides))

    def describe(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"key": self.key, "factor": self.factor, "value": value, "label": self.label,
                "overrides": {k: v for k, v in self.overrides}}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-12 * max(abs(float(a)), abs(float(b)), 1.0)
        except (TypeError, ValueError):
            return False
    return tuple(a) == tuple(b) if isinstance(a, (tuple, list)) else a == b


def factor_grid(grid: Mapping[str, Sequence[Any]] | None = None) -> dict[str, tuple[Any, ...]]:
    """factor -> its values: every factor of FACTORS with its own values, or only the factors
    of `grid` with the values given there (a reduced grid for tests or a quick look)."""
    if grid is None:
        return {name: f.values for name, f in FACTORS.items()}
    unknown = [k for k in grid if k not in FACTORS]
    if unknown:
        raise UserError(f"unknown factor(s) {unknown}: choose from {', '.join(FACTORS)}")
    out = {k: tuple(tuple(v) if isinstance(v, list) else v for v in vals)
           for k, vals in grid.items()}
    empty = [k for k, v in out.items() if not v]
    if empty:
        raise UserError(f"factor(s) {empty} have no values: give at least one")
    return out


def collapse_settings(base: TrainConfig, grid: Mapping[str, Sequence[Any]] | None = None
                      ) -> tuple[list[Setting], dict[str, list[dict[str, Any]]]]:
    """(settings, per-factor value table) of the target for the resolved baseline config.

    settings: the baseline first, then each factor's values that differ from the baseline's
    own value, in the grid's order (one factor changed at a time). table: factor -> one entry
    per value, {"value", "label", "setting"}, where a value equal to the baseline's maps to
    the shared "baseline" setting; when the baseline's value is not in the grid it is added
    first, so every factor's figure and table include the preset.
    """
    settings = [Setting(None, None, "baseline")]
    table: dict[str, list[dict[str, Any]]] = {}
    for name, values in factor_grid(grid).items():
        f = FACTORS[name]
        now = f.current(base)
        rows = []
        if now is not None and not any(_same(v, now) for v in values):
            rows.append({"value": now, "label": f"{f.show(now)} (preset)", "setting": BASELINE})
        for v in values:
            if now is not None and _same(v, now):
                rows.append({"value": v, "label": f"{f.show(v)} (preset)", "setting": BASELINE})
                continue
            s = Setting(name, v, f"{name} {f.show(v)}", tuple(f.overrides(v, base).items()))
            if s.key in {x.key for x in settings}:
                raise UserError(f"factor {name!r} lists the value {f.show(v)} twice")
            settings.append(s)
            rows.append({"value": v, "label": f.show(v), "setting": s.key})
        table[name] = [{**r, "value": list(r["value"]) if isinstance(r["value"], tuple)
                        else r["value"]} for r in rows]
    return settings, table
