"""Typed training configuration: paper defaults, presets, overrides, JSON load/save.

A `TrainConfig` is a tree of frozen dataclasses, one section per constructor that `build.py`
calls (data, views, model, loss, optim, loop). The defaults are the paper's ImageNet recipe
(Appendix D; SPEC §4): ResNet-50, 2-layer projector, InfoNCE τ = 0.1, LARS (η = 0.001,
momentum 0.9), batch 4096, lr 4.8 = 0.3 × 4096 / 256, weight decay 1e-6, 10 warm-up epochs then
cosine to 0.001 × lr (as the official code), 100 epochs, mixed precision, SyncBN.

Presets (`PRESETS`) are partial overrides of those defaults; explicit overrides are applied on
top of a preset; `resolve` then fills derived values (the absolute lr) and validates. Unknown
keys and wrongly typed values raise `UserError`. This module imports no torch, so `--help` and
config handling stay fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dimcollapse.catalogue import PRECISIONS, check_d0
from dimcollapse.errors import UserError


@dataclass(frozen=True)
class DataConfig:
    """Which images to train on (`dimcollapse.data.build_dataset`)."""

    dataset: str = "imagefolder"  # a name of catalogue.DATASETS
    data_dir: str | None = None  # root of the dataset (ImageFolder tree or torchvision files)
    image_size: int = 224  # side of the square views, pixels
    train_subset: int | None = None  # use a fixed, seeded subset of N training images
    download: bool = False  # let torchvision download cifar/stl10 into data_dir
    cache_dir: str | None = None  # where decoded uint8 arrays are cached (None: user cache)
    num_workers: int = 8  # decode worker processes for streaming (non-resident) datasets
    resident_on_device: bool = True  # keep resident uint8 images in GPU memory (no copy/step)


@dataclass(frozen=True)
class ViewsConfig:
    """The two asymmetric augmentations (`dimcollapse.views.build_views`)."""

    preset: str = "imagenet"  # imagenet (Appendix D) | cifar (no blur, small-image crop)
    # SimCLR's jitter strength s as a multiple of the preset's: brightness, contrast, saturation
    # and hue of both views times this (1.0: the preset's views, bit for bit).
    color_jitter_strength: float = 1.0
    crop_min_scale: float | None = None  # the crop's minimum area fraction (None: the preset's)


@dataclass(frozen=True)
class ModelConfig:
    """Backbone + projector (`dimcollapse.models`)."""

    backbone: str = "resnet50"  # resnet18 | resnet50 (torchvision, zero_init_residual)
    stem: str = "imagenet"  # imagenet (7x7/2 + maxpool) | cifar (3x3/1, no maxpool)
    projector: str = "mlp"  # an arm of Tables 1-2 (see dimcollapse.models.PROJECTORS)
    d0: int | None = None  # sub-vector size for directclr/lowrank/random-subvector arms
    hidden_dim: int | None = None  # projector hidden width (None: the representation size)
    out_dim: int | None = None  # projector output size (None: 128 for mlp/linear, D orthogonal)
    groups: int = 8  # number of coordinate groups of the `group` arm (official code: 8)
    sync_bn: bool = True  # BatchNorm statistics over the global batch under DDP


@dataclass(frozen=True)
class LossConfig:
    """The contrastive objective (`dimcollapse.losses.LOSSES`)."""

    name: str = "infonce"  # infonce (official, cross-view negatives) | ntxent (SimCLR 2N-2)
    temperature: float = 0.1
    normalize: bool = True  # L2-normalise z before the dot products


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and learning-rate schedule (`dimcollapse.optim`)."""

    name: str = "lars"  # lars | sgd | adamw
    lr: float | None = None  # peak lr; None: lr_per_256 x batch_size / 256 (linear rule)
    lr_per_256: float = 0.3  # SimCLR's linear scaling rule: 0.3 x 4096 / 256 = 4.8
    weight_decay: float = 1e-6  # not applied to biases and norm parameters
    momentum: float = 0.9
    eta: float = 0.001  # LARS trust coefficient
    warmup_epochs: float = 10.0  # linear warm-up from 0, in epochs of the training set
    warmup_steps: int | None = None  # warm-up in optimizer steps; overrides warmup_epochs
    final_lr_ratio: float = 0.001  # cosine ends at final_lr_ratio x lr (official code)
    probe_lr_scale: float = 1.0  # online classifier lr = probe_lr_scale x lr (official: 1)


@dataclass(frozen=True)
class LoopConfig:
    """Schedule length, precision, and what the loop writes and how often."""

    batch_size: int = 4096  # global batch in image pairs, split evenly over processes
    epochs: int = 100  # schedule length in epochs (ignored when max_steps is set)
    max_steps: int | None = None  # schedule length in optimizer steps; overrides epochs
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (auto: bf16 where supported)
    channels_last: bool = True  # NHWC memory format for convolutions
    device: str = "auto"  # auto | cpu | cuda | cuda:N (auto: the local GPU if any)
    threads: int | None = None  # CPU intra-op threads per process (None: torch's default)
    checkpoint_every_steps: int = 500  # write checkpoint_last.pt every N steps (0: only at end)
    log_every_steps: int = 50  # one metrics.jsonl line every N steps
    spectrum_every_steps: int = 1000  # RankMe / collapsed dims of r and z every N steps (0: off)
    spectrum_window_steps: int | None = None  # batches pooled per spectrum (None: automatic)
    tensorboard: bool = False  # also write the metrics.jsonl records to RUN/tensorboard/
    # Fixed probe set of the spectrum hook (train/probe_set.py): N class-balanced test images,
    # unaugmented, measured in eval mode at every spectrum step (0: off). Off by default: the
    # paper's recipe names no held-out split; the cifar and cpu presets turn it on.
    spectrum_probe_images: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """The whole, resolved recipe of one pretraining run (saved in every run folder)."""

    data: DataConfig = field(default_factory=DataConfig)
    views: ViewsConfig = field(default_factory=ViewsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    seed: int = 0  # model init, projector draws, batch order and views all derive from it
    preset: str | None = None  # the preset these values started from (provenance only)


SECTIONS = ("data", "views", "model", "loss", "optim", "loop")

# Presets: partial overrides of the defaults above ({section: {field: value}}).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The paper's recipe, Appendix D: ImageNet, ResNet-50, LARS, batch 4096, 100 epochs.
    "imagenet": {
        "data": {"dataset": "imagefolder", "image_size": 224},
        "views": {"preset": "imagenet"},
    },
    # One GPU on CIFAR-10: ResNet-18 with the CIFAR stem, the paper's optimiser recipe at
    # batch 512 (lr 0.3 x 512/256 = 0.6), 800 epochs (a common CIFAR SimCLR length).
    "cifar": {
        "data": {"dataset": "cifar10", "image_size": 32, "num_workers": 0},
        "views": {"preset": "cifar"},
        "model": {"backbone": "resnet18", "stem": "cifar"},
        "loop": {"batch_size": 512, "epochs": 800, "checkpoint_every_steps": 1000,
                 "log_every_steps": 50, "spectrum_every_steps": 2000,
                 "spectrum_probe_images": 2048},
    },
    # This 2-core CPU in ~5 minutes: ResNet-18 (ImageNet stem) on 32x32 CIFAR-10, bf16 autocast,
    # SGD, 256 pairs per step; see docs/training.md for how the budget was measured.
    "cpu": {
        "data": {"dataset": "cifar10", "image_size": 32, "num_workers": 0},
        "views": {"preset": "cifar"},
        "model": {"backbone": "resnet18", "stem": "imagenet", "sync_bn": False},
        "optim": {"name": "sgd", "lr_per_256": 0.3, "weight_decay": 1e-6,
                  "warmup_steps": 30, "probe_lr_scale": 1 / 3},
        "loop": {"batch_size": 256, "max_steps": 900, "checkpoint_every_steps": 100,
                 "log_every_steps": 10, "spectrum_every_steps": 100,
                 # 1024 test images every 100 steps: ~0.7% of the training time (docs/training.md)
                 "spectrum_probe_images": 1024},
    },
}

# Fields that may change when a run is resumed: they move files or pick hardware but do not
# change what is computed (precision does, so it is not here).
RESUMABLE_FIELDS = frozenset({
    "data.data_dir", "data.cache_dir", "data.num_workers", "data.download",
    "data.resident_on_device", "loop.device",
    "loop.threads",
    "loop.checkpoint_every_steps", "loop.log_every_steps", "loop.spectrum_every_steps",
    "loop.spectrum_window_steps", "loop.spectrum_probe_images", "loop.tensorboard", "preset",
})


def default_config() -> TrainConfig:
    """The paper's recipe (same as the `imagenet` preset except `preset` is unset)."""
    return TrainConfig()


def preset_config(name: str) -> TrainConfig:
    """Defaults overridden by preset `name` (one of `PRESETS`)."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return apply_overrides(TrainConfig(preset=name), PRESETS[name])


def apply_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Return `cfg` with `overrides` applied.

    `overrides` maps a section to a dict of fields ({"model": {"d0": 360}}), or a dotted key
    to a value ({"model.d0": 360}), or a top-level field to a value ({"seed": 1}). Unknown
    sections or fields and wrongly typed values raise `UserError`.
    """
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if "." in key:
            section, name = key.split(".", 1)
            nested.setdefault(section, {})[name] = value
        elif key in SECTIONS:
            if not isinstance(value, dict):
                raise UserError(f"config section {key!r} must be a JSON object, got {value!r}")
            nested.setdefault(key, {}).update(value)
        else:
            nested[key] = value
    changes: dict[str, Any] = {}
    for key, value in nested.items():
        if key in SECTIONS:
            section = getattr(cfg, key)
            changes[key] = dataclasses.replace(section, **_checked(type(section), value, key))
        else:
            changes.update(_checked(TrainConfig, {key: value}, ""))
    return dataclasses.replace(cfg, **changes)


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Rebuild a config from `config_to_dict` output (strict: unknown keys are errors)."""
    if not isinstance(d, dict):
        raise UserError(f"a training config must be a JSON object, got {type(d).__name__}")
    return apply_overrides(TrainConfig(), d)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain nested dict (`dataclasses.asdict`): what run folders and checkpoints store."""
    return dataclasses.asdict(cfg)


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> None:
    """Write `cfg` as JSON, atomically."""
    # runinfo: its stdlib imports (subprocess, tempfile, platform) are kept out of --help
    from dimcollapse.runinfo import write_json

    write_json(path, config_to_dict(cfg))


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a config JSON written by `save_config` (or by hand; unknown keys are errors)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such config file: {path}; pass the path of a JSON training config")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(
            f"config file {path} is not valid JSON ({err}); fix or regenerate it"
        ) from None
    return config_from_dict(data)


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Fill derived values (the absolute lr) and check ranges; raise `UserError` if invalid."""
    loop, optim = cfg.loop, cfg.optim
    _require(loop.batch_size >= 1, "--batch-size must be >= 1")
    _require(loop.epochs >= 1 or loop.max_steps is not None, "--epochs must be >= 1")
    _require(loop.max_steps is None or loop.max_steps >= 1, "--max-steps must be >= 1")
    _require(loop.precision in PRECISIONS,
             f"--precision must be one of {', '.join(PRECISIONS)}, got {loop.precision!r}")
    for name in ("checkpoint_every_steps", "log_every_steps", "spectrum_every_steps",
                 "spectrum_probe_images"):
        _require(getattr(loop, name) >= 0, f"loop.{name} must be >= 0")
    _require(loop.log_every_steps >= 1, "--log-every must be >= 1")
    _require(loop.threads is None or loop.threads >= 1, "--threads must be >= 1")
    _require(cfg.data.image_size >= 8, "--image-size must be >= 8 pixels")
    _require(cfg.data.train_subset is None or cfg.data.train_subset >= 1,
             "--train-subset must be >= 1")
    check_d0(cfg.model.d0)
    _require(cfg.loss.temperature > 0, "--temperature must be > 0")
    _require(optim.warmup_epochs >= 0, "--warmup-epochs must be >= 0")
    _require(optim.warmup_steps is None or optim.warmup_steps >= 0, "--warmup-steps must be >= 0")
    _require(optim.weight_decay >= 0, "--weight-decay must be >= 0")
    _require(cfg.views.color_jitter_strength >= 0, "--jitter-strength must be >= 0")
    _require(cfg.views.crop_min_scale is None or 0 < cfg.views.crop_min_scale <= 1,
             "--crop-min-scale must be in (0, 1]")
    _require(optim.probe_lr_scale >= 0, "--probe-lr-scale must be >= 0")
    if optim.lr is None:
        optim = dataclasses.replace(optim, lr=optim.lr_per_256 * loop.batch_size / 256)
    assert optim.lr is not None  # set just above when it was None
    _require(optim.lr > 0, "--lr must be > 0")
    return dataclasses.replace(cfg, optim=optim)


def config_diff(a: TrainConfig, b: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Dotted field name -> (value in a, value in b) for every field that differs."""
    fa, fb = flatten(config_to_dict(a)), flatten(config_to_dict(b))
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys: {"a": {"b": 1}} -> {"a.b": 1} (insertion order kept)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def _checked(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate field names and types of `values` against dataclass `cls`."""
    if not isinstance(values, dict):
        raise UserError(f"config section {where!r} must be a JSON object, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out = {}
    for key, value in values.items():
        dotted = f"{where}.{key}" if where else key
        if key not in names:
            raise UserError(f"unknown config key {dotted!r}: valid keys here are "
                            f"{', '.join(names)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            raise UserError(f"config section {dotted!r} must be a JSON object")
        out[key] = _coerce(value, hint, dotted)
    return out


def _coerce(value: Any, hint: Any, dotted: str) -> Any:
    """Check `value` against a field type (int, float, bool, str, or `X | None`)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise UserError(f"config key {dotted!r} must be {hint.__name__}, got {value!r}")
