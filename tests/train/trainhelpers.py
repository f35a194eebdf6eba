"""Helpers for the training tests: a tiny CIFAR-like ImageFolder tree, tiny configs, CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def make_tree(root: Path, *, classes: int = 4, per_class: int = 12, size: int = 16,
              seed: int = 0) -> Path:
    """root/train/<class>/<i>.jpg: coloured blobs whose mean colour depends on the class."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / "train" / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, size=3)
        for i in range(per_class):
            img = np.clip(base + rng.normal(0, 40, size=(size, size, 3)), 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)
    return root


def tiny_overrides(data_dir: Path, cache_dir: Path, **extra) -> dict:
    """ResNet-18 on 16x16 images, 16 pairs per step, fp32: a few steps take about a second."""
    over = {
        "data.dataset": "cifar10", "data.data_dir": str(data_dir), "data.image_size": 16,
        "data.cache_dir": str(cache_dir), "views.preset": "cifar",
        "model.backbone": "resnet18", "model.stem": "imagenet", "model.projector": "mlp",
        "model.hidden_dim": 64, "model.out_dim": 32,
        "optim.name": "sgd", "optim.lr": 0.05, "optim.warmup_steps": 2,
        "loop.batch_size": 16, "loop.max_steps": 6, "loop.precision": "fp32",
        "loop.checkpoint_every_steps": 2, "loop.log_every_steps": 1,
        "loop.spectrum_every_steps": 3,
    }
    over.update(extra)
    return over


def cli_args(over: dict) -> list[str]:
    """The same overrides as `dimcollapse train` flags (for subprocess runs)."""
    flag = {
        "data.dataset": "--dataset", "data.data_dir": "--data-dir",
        "data.image_size": "--image-size", "data.cache_dir": "--cache-dir",
        "views.preset": "--views", "model.backbone": "--backbone", "model.stem": "--stem",
        "model.projector": "--projector", "model.hidden_dim": "--hidden-dim",
        "model.out_dim": "--out-dim", "model.d0": "--d0", "optim.name": "--optimizer",
        "optim.lr": "--lr", "optim.warmup_steps": "--warmup-steps",
        "loop.batch_size": "--batch-size", "loop.max_steps": "--max-steps",
        "loop.precision": "--precision", "loop.checkpoint_every_steps": "--checkpoint-every",
        "loop.log_every_steps": "--log-every", "loop.spectrum_every_steps": "--spectrum-every",
        "model.sync_bn": "--sync-bn", "seed": "--seed",
    }
    out = []
    for k, v in over.items():
        if isinstance(v, bool):
            out.append(flag[k] if v else "--no-" + flag[k][2:])
        else:
            out += [flag[k], str(v)]
    return out


def cli_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def run_cli(args: list[str], *, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dimcollapse", "train", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=env or cli_env())
