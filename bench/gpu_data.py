"""CIFAR-10-shaped data for the GPU check, in torchvision's on-disk format (cifar-10-batches-py).

The lent GPU machine gets a copy of the working tree but not ../shared, and at most 64 MiB
travels with a call: the 150 MB CIFAR-10 train split does not fit. So either

    python bench/gpu_data.py subset --data-dir ../shared/datasets/cifar10 --out .gpudata/cifar10

writes a class-balanced, seeded subset (default 10000 train + 2000 test images, 37 MB) that the
`run` call carries (`carry: [".gpudata"]`, ignored by git), or the check writes
`synthetic` data itself: uint8 images whose mean colour depends on the class, plus noise (a
probe can learn the colour; nothing about real images). Either way `dimcollapse` reads the
folder as it reads torchvision's CIFAR-10 (`data.tvformats.load_cifar`).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np

BASE = "cifar-10-batches-py"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
TRAIN_FILES = 5  # data_batch_1 ... data_batch_5, as torchvision expects
INFO = "gpu_data.json"


def write_cifar(root: Path, train: tuple[np.ndarray, np.ndarray],
                test: tuple[np.ndarray, np.ndarray], classes: list[str], info: dict) -> Path:
    """root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} + root/gpu_data.json.

    train/test: (uint8 [N, 3, 32, 32], int64 [N]); the train rows are split over the five
    batch files in order, so reading them back concatenates to the same array."""
    base = Path(root) / BASE
    base.mkdir(parents=True, exist_ok=True)

    def dump(name: str, images: np.ndarray, labels: np.ndarray) -> None:
        entry = {"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1),
                 "labels": [int(y) for y in labels], "batch_label": name}
        with open(base / name, "wb") as f:
            pickle.dump(entry, f, protocol=4)

    chunks = np.array_split(np.arange(len(train[0])), TRAIN_FILES)
    for k, rows in enumerate(chunks, start=1):
        dump(f"data_batch_{k}", train[0][rows], train[1][rows])
    dump("test_batch", *test)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(classes)}, f, protocol=4)
    info = {**info, "train_images": len(train[0]), "test_images": len(test[0])}
    (Path(root) / INFO).write_text(json.dumps(info, indent=1) + "\n")
    return Path(root)


def synthetic_split(n: int, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, 3, 32, 32] and int64 [n]: class c has mean colour colours[c], noise std 40."""
    rng = np.random.default_rng(seed)
    colours = np.random.default_rng(12345).integers(40, 216, size=(classes, 3))
    y = np.arange(n) % classes
    x = colours[y][:, :, None, None] + rng.normal(0, 40, size=(n, 3, 32, 32))
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


def write_synthetic(root: Path, n_train: int, n_test: int) -> Path:
    return write_cifar(root, synthetic_split(n_train, 0), synthetic_split(n_test, 1), CLASSES,
                       {"source": "synthetic", "note": "class-coloured noise, not CIFAR-10"})


def write_subset(root: Path, data_dir: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """A class-balanced, seed-determined subset of the real CIFAR-10 (dimcollapse's subset)."""
    from dimcollapse.data import build_dataset

    parts = []
    for split, n in (("train", n_train), ("test", n_test)):
        ds = build_dataset("cifar10", data_dir, split, subset=n, subset_seed=seed)
        parts.append((ds.images.numpy(), ds.targets.numpy()))
    return write_cifar(root, parts[0], parts[1], ds.classes,
                       {"source": "cifar10-subset", "from": str(data_dir), "seed": seed})


def read_info(root: Path) -> dict | None:
    path = Path(root) / INFO
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["subset", "synthetic"])
    p.add_argument("--out", type=Path, required=True,
                   help="folder to write (e.g. .gpudata/cifar10)")
    p.add_argument("--data-dir", type=Path, help="CIFAR-10 (subset: required)")
    p.add_argument("--train", type=int, default=10_000, help="train images (default 10000)")
    p.add_argument("--test", type=int, default=2_000, help="test images (default 2000)")
    args = p.parse_args(argv)
    if args.kind == "subset":
        if args.data_dir is None:
            print("gpu_data: subset needs --data-dir (CIFAR-10)", file=sys.stderr)
            return 2
        write_subset(args.out, args.data_dir, args.train, args.test)
    else:
        write_synthetic(args.out, args.train, args.test)
    size = sum(f.stat().st_size for f in (args.out / BASE).iterdir())
    print(f"gpu_data: wrote {args.kind} {args.train}+{args.test} images to {args.out} "
          f"({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
