"""Helpers for the training tests: a tiny CIFAR-like ImageFolder tree, tiny configs, CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from dimcollapse.catalogue import flag_args

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
    return [arg for key, value in over.items() for arg in flag_args(key, value)]


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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_step_worker(rank: int, world: int, port: int, cases: dict, out_dir: str,
                    steps: int) -> None:
    """Drive the loop's own parts for `steps` steps of each case {name: overrides}.

    Rank 0 first runs every case alone, without a process group (the reference), saving
    out_dir/one-NAME.pt; then all `world` ranks run each case under gloo and rank 0 saves
    out_dir/two-NAME.pt. Each file: a list of per-step loss, probe stats and gradients."""
    import torch

    from dimcollapse import distributed

    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(k, None)
    torch.set_num_threads(1)
    if rank == 0:
        for name, over in cases.items():
            torch.save(_drive(over, steps, distributed.init_from_env()), f"{out_dir}/one-{name}.pt")
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    info = distributed.init_from_env(timeout_s=300)
    for name, over in cases.items():
        records = _drive(over, steps, info)
        if info.is_main:
            torch.save(records, f"{out_dir}/two-{name}.pt")
    distributed.shutdown()


def _drive(over: dict, steps: int, info) -> list[dict]:
    import torch

    # "_dtype": float64 builds every module and tensor of the run in float64 (the default
    # dtype), so 1 and 2 processes can be compared without float32 round-off chaos.
    over = dict(over)
    dtype = getattr(torch, over.pop("_dtype", "float32"))
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return _drive_steps(over, steps, info, dtype)
    finally:
        torch.set_default_dtype(before)


def _drive_steps(over: dict, steps: int, info, dtype) -> list[dict]:
    import torch

    from dimcollapse import build
    from dimcollapse.config import apply_overrides, default_config, resolve
    from dimcollapse.devices import resolve_precision
    from dimcollapse.optim import set_lr
    from dimcollapse.train.parts import assemble
    from dimcollapse.train.step import apply_update, forward_backward

    cfg = resolve(apply_overrides(default_config(), over))
    device = torch.device("cpu")
    ds = build.build_train_dataset(cfg, progress=False)
    batches = build.build_batches(cfg, ds, rank=info.rank, world_size=info.world_size,
                                  device=device, start_step=0)
    total, warmup = build.schedule_steps(cfg, batches.steps_per_epoch)
    schedule = build.build_schedule(cfg, total_steps=total, warmup_steps=warmup)
    precision = resolve_precision(cfg.loop.precision, device)
    parts = assemble(cfg, num_classes=len(ds.classes), device=device, precision=precision,
                     world_size=info.world_size)
    records = []
    for step, batch in zip(range(steps), batches, strict=False):
        set_lr(parts.optimizer, schedule(step))
        parts.encoder.set_step(step)
        stats, _, _ = forward_backward(parts.ddp, batch.view1.to(dtype), batch.view2.to(dtype),
                                       batch.target,
                                       loss_fn=parts.loss_fn, precision=precision,
                                       optimizer=parts.optimizer,
                                       channels_last=cfg.loop.channels_last)
        grads = {n: p.grad.detach().clone() for n, p in parts.model.named_parameters()
                 if p.grad is not None}
        apply_update(parts.optimizer, None)
        records.append({"loss": stats.loss, "probe_loss": stats.probe_loss,
                        "correct": stats.correct, "count": stats.count, "grads": grads})
    return records
