"""The one checkpoint format (docs/ARCHITECTURE.md): write atomically, read with validation.

A checkpoint is a `torch.save`d dict of plain containers and tensors only, so it loads with
`torch.load(..., weights_only=True)`:

    format "dimcollapse-checkpoint", format_version 1, backbone, projector, classifier,
    optimizer (state_dicts), scaler (GradScaler state or None), step (optimizer steps done),
    total_steps, config (dataclasses.asdict of the resolved TrainConfig), rng, git_sha, metadata

`rng` holds the torch CPU/CUDA, numpy and Python generator states. Batches and views are a pure
function of (seed, step) and the stochastic projectors of (seed, step), so nothing in a training
step draws from these generators; they are saved so that code which does still resumes exactly.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dimcollapse.errors import UserError
from dimcollapse.runinfo import atomic_write

FORMAT = "dimcollapse-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("backbone", "projector", "classifier", "optimizer", "step", "config")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write `state` (plus the format keys) to `path` atomically: temp file, fsync, rename.

    A process killed mid-write leaves the previous file intact (or nothing, never a torn file).
    """
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu") -> dict[str, Any]:
    """Read a dimcollapse checkpoint (weights_only) and check its format keys."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such checkpoint: {path}; pass a checkpoint_*.pt from a run folder")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated/foreign files
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()] or [repr(err)]
        why = next((ln for ln in lines if ln.startswith("WeightsUnpickler")), lines[0])
        raise UserError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {why[:200]}); "
            "it is truncated or not a dimcollapse checkpoint: delete it to start over"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not a dimcollapse training checkpoint (no format key); "
                        "pass a checkpoint_*.pt written by `dimcollapse train`")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} has checkpoint format_version {ckpt.get('format_version')}, "
                        f"this dimcollapse reads {FORMAT_VERSION}; upgrade dimcollapse")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)}; it is incomplete")
    return ckpt


def capture_rng() -> dict[str, Any]:
    """All global generator states as tensors and plain values (weights_only-safe)."""
    # The legacy global numpy generator: we never draw from it, third-party code might.
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng` (missing entries are left alone)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        s = state["numpy"]
        legacy = (s["kind"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"],
                  s["cached_gaussian"])
        np.random.set_state(legacy)  # noqa: NPY002
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
