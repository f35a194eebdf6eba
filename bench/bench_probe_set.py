"""Cost of the spectrum hook's fixed probe set, in training steps of the `cpu` preset.

    python bench/bench_probe_set.py [--sizes 512,1024,2048] [--steps 3] [--quick]

Workload: the `cpu` preset's parts (ResNet-18 with the ImageNet stem, 2-layer projector,
InfoNCE, SGD, its precision, channels_last) at batch 256 on fixed random 32 px views (the data
does not change the cost); one training step = forward of both views + backward + update,
timed over --steps steps after one warm-up. Then one `ProbeSet.measure` (eval mode, no grad,
float32, RankMe and collapsed dims of r and z) per probe size, after one warm-up, on the same
model in the same run. Prints, per size, seconds and the ratio to one training step, and the
overhead at the preset's --spectrum-every (measurements / steps x ratio). The last line is one
JSON object. `--quick`: tiny sizes, to check that the script runs (the numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from dimcollapse.config import apply_overrides, preset_config, resolve
from dimcollapse.devices import resolve_precision
from dimcollapse.train.parts import assemble
from dimcollapse.train.probe_set import ProbeSet
from dimcollapse.train.step import apply_update, forward_backward


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="512,1024,2048")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    batch, size = (4, 16) if args.quick else (256, 32)
    sizes = [8, 16] if args.quick else [int(s) for s in args.sizes.split(",")]
    steps = 1 if args.quick else args.steps
    cfg = resolve(apply_overrides(preset_config("cpu"), {"loop.batch_size": batch,
                                                         "data.image_size": size}))
    dev = torch.device("cpu")
    prec = resolve_precision(cfg.loop.precision, dev)
    parts = assemble(cfg, num_classes=10, device=dev, precision=prec, world_size=1)
    gen = torch.Generator().manual_seed(0)
    v1, v2 = (torch.randn(batch, 3, size, size, generator=gen) for _ in range(2))
    target = torch.randint(0, 10, (batch,), generator=gen)

    def step() -> None:
        forward_backward(parts.ddp, v1, v2, target, loss_fn=parts.loss_fn, precision=prec,
                         optimizer=parts.optimizer, channels_last=True)
        apply_update(parts.optimizer, None)

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    step_s = (time.perf_counter() - t0) / steps
    every, total = cfg.loop.spectrum_every_steps, cfg.loop.max_steps
    measurements = total // every + 1  # every `every` steps (the last is one) + step 0
    print(f"training step ({batch} pairs, {prec.name}): {step_s:.3f} s")
    probes = {}
    for n in sizes:
        probe = ProbeSet(torch.randn(n, 3, size, size, generator=gen), total=n,
                         channels_last=True)
        probe.measure(parts.model.encoder)
        t0 = time.perf_counter()
        probe.measure(parts.model.encoder)
        s = time.perf_counter() - t0
        ratio = s / step_s
        overhead = measurements * ratio / total
        probes[str(n)] = {"s": round(s, 4), "steps": round(ratio, 3),
                          "overhead": round(overhead, 4)}
        print(f"probe set of {n}: {s:.3f} s = {ratio:.2f} training steps; "
              f"{measurements} measurements in {total} steps: +{100 * overhead:.2f}%")
    print(json.dumps({"quick": args.quick, "step_s": round(step_s, 4), "precision": prec.name,
                      "spectrum_every": every, "max_steps": total, "probe": probes}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
