"""Training checkpoints: the one format (`dimcollapse.checkpoint_format`) plus RNG capture.

`save_checkpoint` / `load_checkpoint` are the format module's writer and reader (a resume needs
every key of `REQUIRED_KEYS`). `rng` holds the torch CPU/CUDA, numpy and Python generator
states. Batches and views are a pure function of (seed, step) and the stochastic projectors of
(seed, step), so nothing in a training step draws from these generators; they are saved so that
code which does still resumes exactly.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from dimcollapse.checkpoint_format import FORMAT, FORMAT_VERSION, REQUIRED_KEYS
from dimcollapse.checkpoint_format import read_checkpoint as load_checkpoint
from dimcollapse.checkpoint_format import write_checkpoint as save_checkpoint

__all__ = ["FORMAT", "FORMAT_VERSION", "REQUIRED_KEYS", "capture_rng", "load_checkpoint",
           "restore_rng", "save_checkpoint"]


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
