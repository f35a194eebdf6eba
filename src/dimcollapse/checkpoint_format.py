"""The one checkpoint format (docs/ARCHITECTURE.md): its keys, name and version, one writer and
one reader, and their error messages. `train` writes and resumes through it; `eval` reads our
files through it (and the official DirectCLR and torchvision files beside it, `eval.checkpoints`).

A checkpoint is a `torch.save`d dict of plain containers and tensors only, so it loads with
`torch.load(..., weights_only=True)`:

    format "dimcollapse-checkpoint", format_version 1, backbone, projector, classifier,
    optimizer (state_dicts), scaler (GradScaler state or None), step (optimizer steps done),
    total_steps, config (dataclasses.asdict of the resolved TrainConfig), rng, git_sha, metadata
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

import torch

from dimcollapse.errors import UserError
from dimcollapse.runinfo import atomic_write
from dimcollapse.safe_load import torch_load

FORMAT = "dimcollapse-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("backbone", "projector", "classifier", "optimizer", "step", "config")
STATE_DICTS = ("backbone", "projector", "classifier", "optimizer")  # must be dicts when present


def write_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write `state` (plus the format keys) to `path` atomically: temp file, fsync, rename.

    A process killed mid-write leaves the previous file intact (or nothing, never a torn file).
    """
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    return atomic_write(path, lambda f: torch.save(payload, f))


def is_ours(obj: object) -> TypeGuard[Mapping]:
    """Whether a loaded file is a dimcollapse checkpoint (by its format key)."""
    return isinstance(obj, Mapping) and obj.get("format") == FORMAT


def check_ours(obj: Mapping, path: str | os.PathLike,
               required: tuple[str, ...] = REQUIRED_KEYS) -> Mapping:
    """Check the version and the `required` keys of one of our checkpoints; return it."""
    version = obj.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(
            f"{path} has checkpoint format_version {version!r}, but this dimcollapse reads "
            f"{FORMAT_VERSION}: load it with the dimcollapse version that wrote it")
    missing = [k for k in required
               if k not in obj or (k in STATE_DICTS and not isinstance(obj[k], Mapping))]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)} (or holds no state dict "
                        "there); it is incomplete: re-save it")
    return obj


def read_checkpoint(path: str | os.PathLike, *,
                    required: tuple[str, ...] = REQUIRED_KEYS) -> dict[str, Any]:
    """Read one of our checkpoints onto the CPU (weights_only) and check it (`check_ours`)."""
    obj, _ = torch_load(path)
    if not is_ours(obj):
        raise UserError(f"{path} is not a dimcollapse training checkpoint (no format "
                        f"{FORMAT!r}); pass a checkpoint_*.pt written by `dimcollapse train`")
    return dict(check_ours(obj, path, required))
