"""The reproduction's budget: one training recipe and one evaluation protocol for every arm.

A `Budget` is a training preset (`dimcollapse.config.PRESETS`: cpu, cifar, imagenet) plus the
levers a user may change for all arms at once (schedule length, a fixed training subset, the
image size, the batch), and the evaluation settings. Every arm and seed gets exactly the same
budget; only the projector arm, d0 and the seed differ between runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dimcollapse.config import (
    TrainConfig,
    apply_overrides,
    config_to_dict,
    flatten,
    preset_config,
    resolve,
)
from dimcollapse.errors import UserError
from dimcollapse.reproduce.arms import Arm
from dimcollapse.spectrum.metrics import COLLAPSE_REL_THRESHOLD

# reproduce preset -> the training preset and the dataset it expects
DATASETS = {"cpu": "cifar10", "cifar": "cifar10", "imagenet": "imagefolder"}
# Fields that pick hardware or log cadence: they do not change what an arm computes, so a rerun
# may change them without invalidating completed arms (as `train`'s RESUMABLE_FIELDS).
NOT_PLAN = ("data.data_dir", "data.cache_dir", "data.num_workers", "data.resident_on_device",
            "loop.threads",
            "loop.device", "loop.log_every_steps", "loop.checkpoint_every_steps",
            "loop.spectrum_every_steps", "loop.spectrum_window_steps",
            "loop.spectrum_probe_images",  # the probe set measures; it changes no weight
            "loop.tensorboard")  # a second copy of metrics.jsonl
# Fields added after arms were completed: at these defaults they leave the plan, so an arm
# finished before the field existed (whose plan lacks it) is still reused.
LATER_FIELDS = {"views.color_jitter_strength": 1.0, "views.crop_min_scale": None}


@dataclass(frozen=True)
class Budget:
    """What every arm of one reproduction shares. None means "the preset's value"."""

    preset: str  # cpu | cifar | imagenet
    data_dir: str
    max_steps: int | None = None  # schedule length in optimizer steps
    epochs: int | None = None  # schedule length in epochs (replaces the preset's max_steps)
    train_subset: int | None = None  # pretrain on a fixed class-balanced subset of N images
    image_size: int | None = None  # training and evaluation image side, pixels
    batch_size: int | None = None  # global batch (pairs)
    threads: int | None = None  # CPU threads (not part of the plan)
    cache_dir: str | None = None  # decoded-image cache
    extra: tuple[tuple[str, Any], ...] = field(default=())  # `--set key=value` overrides
    select_l2: bool = True  # probe's L2 strength chosen on held-out train rows (select_l2)
    probe_subset: int | None = None  # probe/kNN on a class-balanced subset of the train split
    eval_precision: str = "auto"  # feature extraction autocast (features stored float32)
    eval_batch_size: int = 512

    def __post_init__(self):
        if self.preset not in DATASETS:
            raise UserError(f"unknown preset {self.preset!r}: choose cpu, cifar or imagenet")
        if self.max_steps is not None and self.epochs is not None:
            raise UserError("--max-steps and --epochs both set the schedule: pass one")
        for name in ("max_steps", "epochs", "train_subset", "image_size", "batch_size",
                     "threads", "eval_batch_size", "probe_subset"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {v}")

    @property
    def dataset(self) -> str:
        return DATASETS[self.preset]

    def train_overrides(self, arm: Arm, seed: int) -> dict[str, Any]:
        """Dotted config overrides of one arm and seed (on top of the training preset)."""
        over: dict[str, Any] = {"data.dataset": self.dataset, "data.data_dir": self.data_dir}
        if self.cache_dir is not None:
            over["data.cache_dir"] = self.cache_dir
        if self.max_steps is not None:
            over["loop.max_steps"] = self.max_steps
        if self.epochs is not None:
            over["loop.epochs"] = self.epochs
            over["loop.max_steps"] = None
        for key, name in (("data.train_subset", "train_subset"),
                          ("data.image_size", "image_size"), ("loop.batch_size", "batch_size"),
                          ("loop.threads", "threads")):
            if getattr(self, name) is not None:
                over[key] = getattr(self, name)
        over.update(dict(self.extra))
        over.update({"model.projector": arm.projector, "model.d0": arm.d0, "seed": int(seed)})
        return over

    def config(self, arm: Arm, seed: int) -> TrainConfig:
        """The resolved training config of one arm and seed (UserError if invalid)."""
        return resolve(apply_overrides(preset_config(self.preset),
                                       self.train_overrides(arm, seed)))

    def representation_dim(self) -> int:
        # torch: `reproduce` imports without torch (plan, replot, results)
        from dimcollapse.eval.resnet_state import FEATURE_DIMS

        return FEATURE_DIMS[self.config(Arm("none"), 0).model.backbone]

    def eval_settings(self) -> dict[str, Any]:
        """The evaluation protocol (part of every arm's plan)."""
        return {"probe": "linear (L-BFGS, train-standardised r)",
                "l2": "select_l2" if self.select_l2 else "default",
                "knn": {"k": 200, "temperature": 0.07},
                "feature_precision": self.eval_precision,
                "feature_batch_size": self.eval_batch_size,
                "probe_train_subset": self.probe_subset,
                "spectrum": {"split": "test", "normalize": True, "center": True, "ddof": 0,
                             "collapse_threshold": COLLAPSE_REL_THRESHOLD}}

    def plan(self, arm: Arm, seed: int) -> dict[str, Any]:
        """What determines an arm's results: its config (minus hardware/logging fields) and
        the evaluation protocol. A completed arm is reused only when its plan is equal."""
        flat = flatten(config_to_dict(self.config(arm, seed)))
        cfg = {k: v for k, v in sorted(flat.items()) if k not in NOT_PLAN
               and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
        return json.loads(json.dumps({"config": cfg, "eval": self.eval_settings()}))

    def describe(self) -> dict[str, Any]:
        return {"preset": self.preset, "dataset": self.dataset, "data_dir": self.data_dir,
                "max_steps": self.max_steps, "epochs": self.epochs,
                "train_subset": self.train_subset, "image_size": self.image_size,
                "batch_size": self.batch_size, "threads": self.threads,
                "set": {k: v for k, v in self.extra}, "select_l2": self.select_l2,
                "probe_subset": self.probe_subset,
                "eval_precision": self.eval_precision, "eval_batch_size": self.eval_batch_size}


def parse_set(items: list[str]) -> tuple[tuple[str, Any], ...]:
    """`--set section.field=VALUE` items -> ((key, value), ...); VALUE is JSON (else a str)."""
    out = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or "." not in key:
            raise UserError(f"--set {item!r}: expected section.field=VALUE, e.g. "
                            "--set optim.lr=0.1")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out.append((key.strip(), value))
    return tuple(out)
