"""Time the `cifar` preset's training step: one phase of bench/gpu_check.sh (see bench/README.md).

    python bench/gpu_timing.py --json timing.json [--dry]

The workload is the preset as `dimcollapse train --preset cifar` runs it: ResNet-18 with the
CIFAR stem, 2-layer projector, InfoNCE, LARS, batch 512, bf16 autocast, channels_last, and the
dataset resident on the GPU as uint8 with the batched views cut there (`build_batches` moves
it: data.resident_on_device). The images are synthetic uint8 noise of CIFAR-10's train shape
(50000 x 3 x 32 x 32): a step's cost does not depend on the pixel values. The loop's own parts
(`assemble`, `forward_backward`, `apply_update`) run the steps; the per-step statistics'
`.tolist()` synchronises every step, as in the loop. Seconds per epoch are 97 steps (50000 //
512, drop_last) times the mean step. --dry: the same code on the CPU at toy sizes (fp32, 8 px,
batch 8), which proves the script, not the speed. Writes one JSON object.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dimcollapse import build
from dimcollapse.config import apply_overrides, preset_config, resolve
from dimcollapse.data import ImageDataset
from dimcollapse.devices import resolve_precision
from dimcollapse.optim import set_lr
from dimcollapse.runinfo import write_json
from dimcollapse.train.parts import assemble
from dimcollapse.train.step import apply_update, forward_backward

CIFAR10_TRAIN = 50_000
GPU = {"images": CIFAR10_TRAIN, "batch_size": 512, "image_size": 32, "precision": "bf16",
       "warmup": 15, "steps": 200, "views_steps": 100, "max_seconds": 25.0}
DRY = {"images": 64, "batch_size": 8, "image_size": 8, "precision": "fp32", "warmup": 1,
       "steps": 2, "views_steps": 2, "max_seconds": 20.0}


def synthetic_dataset(n: int, size: int, seed: int = 0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return ImageDataset(name="synthetic", split="train", root=Path("."),
                        classes=[str(c) for c in range(10)], targets=torch.arange(n) % 10,
                        images=images, mean=(0.4914, 0.4822, 0.4465),
                        std=(0.2470, 0.2435, 0.2616))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, first: int, steps: int, max_seconds: float) -> tuple[int, float]:
    """Run fn(first), fn(first + 1), ... until `steps` calls or `max_seconds`; (calls, s)."""
    _sync(device)
    t0 = time.perf_counter()
    done = 0
    while done < steps and (done == 0 or time.perf_counter() - t0 < max_seconds):
        fn(first + done)
        done += 1
    _sync(device)
    return done, time.perf_counter() - t0


def measure(sizes: dict, device: torch.device) -> dict:
    cfg = resolve(apply_overrides(preset_config("cifar"), {
        "data.data_dir": ".", "data.image_size": sizes["image_size"],
        "loop.batch_size": sizes["batch_size"], "loop.precision": sizes["precision"]}))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the training loop sets it
    dataset = synthetic_dataset(sizes["images"], sizes["image_size"])
    batches = build.build_batches(cfg, dataset, rank=0, world_size=1, device=device,
                                  start_step=0)
    precision = resolve_precision(cfg.loop.precision, device)
    parts = assemble(cfg, num_classes=10, device=device, precision=precision, world_size=1)
    set_lr(parts.optimizer, cfg.optim.lr)
    losses = []

    def step(s: int) -> None:
        b = batches.batch(s)
        parts.encoder.set_step(s)
        stats, _, _ = forward_backward(parts.ddp, b.view1, b.view2, b.target,
                                       loss_fn=parts.loss_fn, precision=precision,
                                       optimizer=parts.optimizer, scaler=parts.scaler,
                                       channels_last=cfg.loop.channels_last)
        apply_update(parts.optimizer, parts.scaler)
        losses.append(stats.loss)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    n_views, views_s = _timed(batches.batch, device, 0, sizes["views_steps"],
                              sizes["max_seconds"])
    n_warm, warm_s = _timed(step, device, 0, sizes["warmup"], 10 * sizes["max_seconds"])
    n_steps, steps_s = _timed(step, device, n_warm, sizes["steps"], sizes["max_seconds"])
    b = cfg.loop.batch_size
    s_per_step = steps_s / n_steps
    epoch_steps = CIFAR10_TRAIN // b
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "workload": {"preset": "cifar", "backbone": cfg.model.backbone, "stem": cfg.model.stem,
                     "projector": cfg.model.projector, "loss": cfg.loss.name,
                     "optimizer": cfg.optim.name, "batch_size": b,
                     "image_size": cfg.data.image_size, "precision": precision.name,
                     "channels_last": cfg.loop.channels_last,
                     "resident_images_on": str(batches.dataset.images.device),
                     "data": f"synthetic uint8 noise, {sizes['images']} x 3 x "
                             f"{sizes['image_size']} x {sizes['image_size']}"},
        "warmup_steps": n_warm, "warmup_s": round(warm_s, 3),
        "timed_steps": n_steps, "timed_s": round(steps_s, 3),
        "s_per_step": s_per_step,
        "images_per_s": b / s_per_step,
        "epoch_steps": epoch_steps,
        "epoch_s": epoch_steps * s_per_step,
        "views_batches": n_views, "views_images_per_s": n_views * b / views_s,
        "loss_first": losses[0], "loss_last": losses[-1],
        "finite": bool(torch.isfinite(torch.tensor(losses)).all()),
        "max_memory_gib": (torch.cuda.max_memory_allocated(device) / 2**30
                           if device.type == "cuda" else None),
        "torch": torch.__version__, "cuda": torch.version.cuda,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, required=True, help="where to write the result")
    p.add_argument("--dry", action="store_true", help="CPU, toy sizes (proves the script)")
    args = p.parse_args(argv)
    if args.dry:
        device, sizes = torch.device("cpu"), DRY
    elif torch.cuda.is_available():
        device, sizes = torch.device("cuda", 0), GPU
    else:
        print("gpu_timing: no CUDA device; use --dry on a CPU")
        return 2
    out = measure(sizes, device)
    write_json(args.json, out)
    print(f"gpu_timing: {out['images_per_s']:.0f} images/s, {out['epoch_s']:.2f} s/epoch "
          f"({out['workload']['precision']}, batch {out['workload']['batch_size']}, "
          f"{out['device_name']})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
