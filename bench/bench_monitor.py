"""Overhead of `CollapseMonitor` on a training step: ResNet-18 with and without watching r and z.

    python bench/bench_monitor.py [--batch-size 64] [--image-size 32] [--rounds 10] [--quick]

Workload (issue 8): the `cpu` preset's parts (ResNet-18 with the ImageNet stem, 2-layer
projector, InfoNCE, SGD, bf16 autocast, channels_last), one step = forward of both views +
backward + update, on fixed random views (the data does not change the cost). The monitored
step is the same step while a `CollapseMonitor` watches r ("encoder.backbone.avgpool") and z
("encoder.projector") on every forward (every=1; each forward carries both views).

Plain and monitored steps alternate in blocks on the same model, in the same run, so drift
in the machine's load hits both; the ratio is total monitored time / total plain time. One
`compute()` of both names is timed separately (`compute_s`: paid once per logged result, not
per step). Target: ratio <= 1.03. The last line is one JSON object. `--quick`: tiny sizes, to
check that the script runs (the numbers mean nothing then).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from dimcollapse import CollapseMonitor
from dimcollapse.config import apply_overrides, preset_config, resolve
from dimcollapse.devices import resolve_precision
from dimcollapse.optim import set_lr
from dimcollapse.train.parts import assemble
from dimcollapse.train.step import apply_update, forward_backward

WATCH = {"r": "encoder.backbone.avgpool", "z": "encoder.projector"}
TARGET = 1.03


def _parts(batch_size: int):
    cfg = resolve(apply_overrides(preset_config("cpu"), {
        "data.data_dir": "unused-synthetic-views", "loop.batch_size": batch_size}))
    device = torch.device("cpu")
    precision = resolve_precision(cfg.loop.precision, device)
    parts = assemble(cfg, num_classes=10, device=device, precision=precision, world_size=1)
    set_lr(parts.optimizer, cfg.optim.lr)
    return cfg, parts, precision


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=64, help="pairs per step")
    p.add_argument("--image-size", type=int, default=32, help="view side in pixels")
    p.add_argument("--rounds", type=int, default=10, help="alternating plain/monitored blocks")
    p.add_argument("--block", type=int, default=3, help="timed steps per block")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps of each kind first")
    p.add_argument("--precision", default="float64", choices=["float64", "float32"],
                   help="the monitor's product precision (its default: float64)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    args = p.parse_args(argv)
    if args.quick:
        args.batch_size, args.image_size, args.rounds, args.block, args.warmup = 4, 8, 2, 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    cfg, parts, precision = _parts(args.batch_size)
    gen = torch.Generator().manual_seed(0)
    shape = (args.batch_size, 3, args.image_size, args.image_size)
    view1, view2 = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    target = torch.randint(0, 10, (args.batch_size,), generator=gen)
    monitor = CollapseMonitor(metrics=("rankme", "collapsed_dims"), precision=args.precision)

    def step() -> None:
        forward_backward(parts.ddp, view1, view2, target, loss_fn=parts.loss_fn,
                         precision=precision, optimizer=parts.optimizer, scaler=parts.scaler,
                         channels_last=cfg.loop.channels_last)
        apply_update(parts.optimizer, parts.scaler)

    def block(watched: bool, steps: int) -> float:
        if watched:
            monitor.watch(parts.ddp, WATCH)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = time.perf_counter() - t0
        monitor.unwatch()
        return seconds

    block(False, args.warmup)
    block(True, args.warmup)
    plain = monitored = 0.0
    for _ in range(args.rounds):
        plain += block(False, args.block)
        monitored += block(True, args.block)
    t0 = time.perf_counter()
    result = monitor.compute()
    compute_s = time.perf_counter() - t0
    steps = args.rounds * args.block
    out = {
        "ratio": round(monitored / plain, 4),
        "target": TARGET,
        "plain_step_s": round(plain / steps, 5),
        "monitored_step_s": round(monitored / steps, 5),
        "compute_s": round(compute_s, 5),
        "rows_pooled": {k: v["n"] for k, v in result.items()},
        "dims": {k: monitor.spectra()[k].dim for k in result},
        "batch_size": args.batch_size, "image_size": args.image_size,
        "timed_steps_each": steps, "rounds": args.rounds, "monitor_precision": args.precision,
        "autocast": precision.name, "threads": torch.get_num_threads(), "quick": args.quick,
        "load_avg_start": load_start, "load_avg_end": os.getloadavg()[0],
    }
    print(f"plain {out['plain_step_s'] * 1e3:.1f} ms/step, monitored "
          f"{out['monitored_step_s'] * 1e3:.1f} ms/step: ratio {out['ratio']}x "
          f"(target <= {TARGET}); compute() of r and z {compute_s * 1e3:.1f} ms")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
