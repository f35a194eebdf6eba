"""Training throughput: our step vs the official code's style, on this CPU, in the same run.

    python bench/bench_train.py [--data-dir ../shared/datasets/cifar10] [--steps 10] [--ablations]

Workload (issue 3): ResNet-18 (ImageNet stem, the `cpu` preset), 32x32 CIFAR-10, 256 pairs per
step, 2-layer projector, InfoNCE, SGD.

- ours: the training loop's own parts: resident uint8 images, batched views (TwoViewBatches),
  bf16 autocast, channels_last, the backbone's per-pixel matmuls for <= 2x2 inputs
  (models/window_conv.py), forward + backward + update.
- baseline (official code's style): torchvision ImageFolder decoding JPEGs, per-image PIL
  transforms of the same view distribution, DataLoader with 2 workers, fp32, NCHW, the same
  model with torchvision's nn.Conv2d everywhere, same loss and optimizer.
- views alone: our batched views vs the baseline DataLoader without the model.

images/s counts dataset images (pairs of views) per second. Targets: speedup >= 2,
views_speedup >= 5. `--ablations` also times our step under fp32/bf16 x NCHW/channels_last,
with nn.Conv2d only, and with 1 thread. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from dimcollapse import build
from dimcollapse.config import apply_overrides, preset_config, resolve
from dimcollapse.devices import resolve_precision
from dimcollapse.models.window_conv import use_plain_convs
from dimcollapse.optim import set_lr
from dimcollapse.train.parts import assemble
from dimcollapse.train.step import apply_update, forward_backward
from dimcollapse.views import TorchvisionTwoViews

REPO = Path(__file__).resolve().parents[1]


def _config(args, **over):
    base = {"data.data_dir": str(args.data_dir), "loop.batch_size": args.batch_size,
            "model.backbone": "resnet18", "model.stem": args.stem, "views.preset": args.views}
    return resolve(apply_overrides(preset_config("cpu"), {**base, **over}))


def _time_steps(step_fn, warmup: int, steps: int) -> float:
    """Seconds per step over `steps` calls after `warmup` untimed ones."""
    for s in range(warmup):
        step_fn(s)
    t0 = time.perf_counter()
    for s in range(warmup, warmup + steps):
        step_fn(s)
    return (time.perf_counter() - t0) / steps


def ours(args, dataset, *, precision="bf16", channels_last=True, views_only=False,
         window_convs=True) -> float:
    """Our pipeline; returns images (pairs) per second."""
    cfg = _config(args, **{"loop.precision": precision, "loop.channels_last": channels_last})
    device = torch.device("cpu")
    batches = build.build_batches(cfg, dataset, rank=0, world_size=1, device=device,
                                  start_step=0)
    if views_only:
        per_step = _time_steps(batches.batch, args.warmup, args.steps)
        return args.batch_size / per_step
    prec = resolve_precision(precision, device)
    parts = assemble(cfg, num_classes=len(dataset.classes), device=device, precision=prec,
                     world_size=1)
    if not window_convs:
        use_plain_convs(parts.ddp)
    set_lr(parts.optimizer, cfg.optim.lr)

    def step(s):
        b = batches.batch(s)
        parts.encoder.set_step(s)
        forward_backward(parts.ddp, b.view1, b.view2, b.target, loss_fn=parts.loss_fn,
                         precision=prec, optimizer=parts.optimizer,
                         channels_last=channels_last)
        apply_update(parts.optimizer, None)

    return args.batch_size / _time_steps(step, args.warmup, args.steps)


def _official_loader(args, dataset, workers: int):
    import torchvision

    transform = TorchvisionTwoViews(args.views, 32, dataset.mean, dataset.std)
    folder = Path(args.data_dir) / "train"
    tv = torchvision.datasets.ImageFolder(str(folder), transform=transform)
    loader = torch.utils.data.DataLoader(tv, batch_size=args.batch_size, shuffle=True,
                                         num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)
    return loader


def baseline(args, dataset, *, views_only=False) -> float:
    """The official code's style; returns images (pairs) per second."""
    loader = _official_loader(args, dataset, workers=2)
    it = iter(loader)
    if views_only:
        return args.batch_size / _time_steps(lambda s: next(it), args.warmup, args.steps)
    cfg = _config(args, **{"loop.precision": "fp32", "loop.channels_last": False})
    device = torch.device("cpu")
    prec = resolve_precision("fp32", device)
    parts = assemble(cfg, num_classes=len(dataset.classes), device=device, precision=prec,
                     world_size=1)
    use_plain_convs(parts.ddp)  # torchvision's ResNet as the official code runs it
    set_lr(parts.optimizer, cfg.optim.lr)

    def step(s):
        (y1, y2), labels = next(it)
        forward_backward(parts.ddp, y1, y2, labels, loss_fn=parts.loss_fn, precision=prec,
                         optimizer=parts.optimizer)
        apply_update(parts.optimizer, None)

    return args.batch_size / _time_steps(step, args.warmup, args.steps)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/datasets/cifar10",
                   help="CIFAR-10 as an ImageFolder tree (train/<class>/*.jpg)")
    p.add_argument("--batch-size", type=int, default=256, help="pairs per step")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--stem", default="imagenet", choices=["imagenet", "cifar"])
    p.add_argument("--views", default="cifar", choices=["cifar", "imagenet"])
    p.add_argument("--threads", type=int, help="torch intra-op threads of the main process "
                   "(default: torch's, one per core)")
    p.add_argument("--ablations", action="store_true", help="also time precision / memory "
                   "format / thread variants of our step")
    args = p.parse_args()
    if not (args.data_dir / "train").is_dir():
        print(f"bench_train: no ImageFolder tree at {args.data_dir}/train; pass --data-dir",
              file=sys.stderr)
        return 2
    from dimcollapse.data import build_dataset

    dataset = build_dataset("cifar10", args.data_dir, "train")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    out = {"batch_size": args.batch_size, "steps": args.steps, "threads": threads,
           "stem": args.stem, "views": args.views, "load_avg_start": os.getloadavg()[0]}

    def show(name, value):
        print(f"{name:48s} {value:8.1f} images/s", flush=True)
        return round(value, 1)

    out["views_images_per_s"] = show("ours: batched views", ours(args, dataset,
                                                                 views_only=True))
    out["baseline_views_images_per_s"] = show("baseline: PIL views, DataLoader(2 workers)",
                                              baseline(args, dataset, views_only=True))
    out["images_per_s"] = show("ours: step (bf16, channels_last)", ours(args, dataset))
    out["baseline_images_per_s"] = show("baseline: step (PIL loader, fp32, NCHW)",
                                        baseline(args, dataset))
    out["speedup"] = round(out["images_per_s"] / out["baseline_images_per_s"], 2)
    out["views_speedup"] = round(out["views_images_per_s"] / out["baseline_views_images_per_s"],
                                 2)
    if args.ablations:
        abl = {}
        for prec in ("fp32", "bf16"):
            for cl in (False, True):
                name = f"{prec}_{'channels_last' if cl else 'nchw'}"
                abl[name] = show(f"ours: step {name}", ours(args, dataset, precision=prec,
                                                            channels_last=cl))
        abl["bf16_channels_last_plain_convs"] = show(
            "ours: step bf16_channels_last, nn.Conv2d only", ours(args, dataset,
                                                                  window_convs=False))
        torch.set_num_threads(1)
        abl["bf16_channels_last_1thread"] = show("ours: step bf16_channels_last, 1 thread",
                                                 ours(args, dataset))
        torch.set_num_threads(threads)
        out["ablations"] = abl
    out["load_avg_end"] = os.getloadavg()[0]
    print(f"speedup {out['speedup']}x (target >= 2), views_speedup {out['views_speedup']}x "
          "(target >= 5)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
