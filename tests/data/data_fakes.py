"""Writers of tiny fake datasets: ImageFolder trees, torchvision CIFAR pickles, STL-10 binaries."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def write_tree(root: Path, classes: dict[str, int], size=(8, 8), seed=0, ext=".png",
               sizes=None) -> dict[str, np.ndarray]:
    """root/<class>/<k>.<ext> with random RGB pixels; returns {relative path: HxWx3 array}."""
    rng = np.random.default_rng(seed)
    out = {}
    for cls, n in classes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            h, w = sizes[len(out) % len(sizes)] if sizes else size
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            rel = f"{cls}/{k:03d}{ext}"
            Image.fromarray(arr).save(root / rel)
            if ext == ".jpg":  # JPEG is lossy: remember what a decoder returns
                arr = np.asarray(Image.open(root / rel).convert("RGB"))
            out[rel] = arr
    return out


def write_cifar_pickles(root: Path, name: str = "cifar10", n_per_batch: int = 4, seed: int = 0):
    """torchvision's python-pickle layout (cifar-10-batches-py/, cifar-100-python/)."""
    rng = np.random.default_rng(seed)
    if name == "cifar10":
        base = root / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        label_key, meta_file, meta_key, n_classes = "labels", "batches.meta", "label_names", 10
    else:
        base = root / "cifar-100-python"
        files = ["train", "test"]
        label_key, meta_file, meta_key, n_classes = "fine_labels", "meta", "fine_label_names", 100
    base.mkdir(parents=True)
    written = {}
    for f in files:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, n_classes, n_per_batch).tolist()
        with open(base / f, "wb") as fh:
            pickle.dump({"data": data, label_key: labels, "batch_label": f}, fh)
        written[f] = (data, labels)
    with open(base / meta_file, "wb") as fh:
        pickle.dump({meta_key: [f"class{i}" for i in range(n_classes)]}, fh)
    return base, written


def write_stl10(root: Path, n_train=3, n_test=2, n_unlabeled=4, seed=0):
    """torchvision's stl10_binary/ layout: column-major 96x96 images, labels 1..10."""
    rng = np.random.default_rng(seed)
    base = root / "stl10_binary"
    base.mkdir(parents=True)
    out = {}
    for part, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        imgs = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        (base / f"{part}_X.bin").write_bytes(imgs.transpose(0, 1, 3, 2).tobytes())
        labels = rng.integers(1, 11, n).astype(np.uint8)
        if part != "unlabeled":
            (base / f"{part}_y.bin").write_bytes(labels.tobytes())
        out[part] = (imgs, labels.astype(np.int64) - 1)
    (base / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    return base, out
