"""Views throughput vs the per-image PIL torchvision pipeline, measured in the same run.

The baseline is the official code's style: `TorchvisionTwoViews` (the same view distribution,
per image, on PIL images) in a `DataLoader` with `workers` processes. Rounds alternate between
ours and the baseline; a fresh loader per baseline round is shut down before ours is timed,
because persistent workers would keep prefetching (stealing CPU from ours and handing the
baseline batches that were ready before its clock started). Medians over rounds.

    python -m dimcollapse.views.throughput --data-dir ../shared/datasets/cifar10
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time

import torch

from dimcollapse.data.dataset import ImageDataset
from dimcollapse.data.registry import build_dataset
from dimcollapse.views.batches import TwoViewBatches
from dimcollapse.views.presets import build_views
from dimcollapse.views.reference import TorchvisionTwoViews


class _PilPairs(torch.utils.data.Dataset):
    def __init__(self, dataset: ImageDataset, transform):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        img, target = self.dataset[i]
        v1, v2 = self.transform(img)
        return v1, v2, target


def compare_views_throughput(dataset: ImageDataset, *, preset: str = "cifar",
                             image_size: int = 32, batch_size: int = 256, steps: int = 8,
                             rounds: int = 3, workers: int = 2, seed: int = 0) -> dict:
    """Images per second (2 views per pair) of our batched views and of the baseline.

    Returns {"views_images_per_s", "baseline_images_per_s", "views_speedup", "batch_size",
    "threads", "workers"}; ours runs with the current torch.get_num_threads().
    """
    views = build_views(preset, image_size)
    ours_it = TwoViewBatches(dataset, views, batch_size=batch_size, seed=seed)
    baseline = _PilPairs(dataset, TorchvisionTwoViews(preset, image_size, dataset.mean,
                                                      dataset.std))
    ours, base = [], []
    step = itertools.count()
    for _ in range(rounds):
        ours_it.batch(next(step))  # warm-up
        t = time.perf_counter()
        for _ in range(steps):
            ours_it.batch(next(step))
        ours.append((time.perf_counter() - t) / steps)
        loader = torch.utils.data.DataLoader(baseline, batch_size=batch_size, shuffle=True,
                                             num_workers=workers, drop_last=True)
        it = iter(loader)
        for _ in range(2 * max(workers, 1) + 1):  # drain what was prefetched at start-up
            next(it)
        t = time.perf_counter()
        for _ in range(steps):
            next(it)
        base.append((time.perf_counter() - t) / steps)
        del it, loader  # workers exit before our next round
    o, b = statistics.median(ours), statistics.median(base)
    return {"views_images_per_s": 2 * batch_size / o, "baseline_images_per_s": 2 * batch_size / b,
            "views_speedup": b / o, "batch_size": batch_size,
            "threads": torch.get_num_threads(), "workers": workers}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="CIFAR-10 folder (either format)")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--split", default="test", help="split to read images from (default test)")
    ap.add_argument("--preset", default="cifar")
    ap.add_argument("--image-size", type=int, default=32, help="output size in pixels")
    ap.add_argument("--batch-size", type=int, default=256, help="pairs per step")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads for ours")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = build_dataset(args.dataset, args.data_dir, args.split)
    res = compare_views_throughput(ds, preset=args.preset, image_size=args.image_size,
                                   batch_size=args.batch_size, steps=args.steps,
                                   rounds=args.rounds)
    print(f"ours {res['views_images_per_s']:.0f} img/s, baseline "
          f"{res['baseline_images_per_s']:.0f} img/s, speedup {res['views_speedup']:.2f}x")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
