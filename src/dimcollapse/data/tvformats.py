"""torchvision's on-disk formats: CIFAR-10/100 python pickles and STL-10 binaries; downloads.

These files already hold uint8 pixels, so they are read directly (no decode cache needed).
File names, URLs and checksums are read from torchvision's dataset classes, so a folder that
torchvision created (or `--download` fetched) is recognised here.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from dimcollapse.errors import UserError


def _tv_class(name: str):
    # torchvision: only the torchvision-format datasets need it
    from torchvision import datasets

    return {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100,
            "stl10": datasets.STL10}[name]


def find_base(name: str, root: Path) -> Path | None:
    """The folder holding the torchvision files (root/<base_folder> or root itself), or None."""
    cls = _tv_class(name)
    probe = cls.train_list[0][0]
    for cand in (root / cls.base_folder, root):
        if (cand / probe).is_file():
            return cand
    return None


def download(name: str, root: Path) -> None:
    """Fetch and extract the torchvision archive into root (only when asked: download=True)."""
    # torchvision: only the torchvision-format datasets need it
    from torchvision.datasets import utils as tv_utils

    cls = _tv_class(name)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tv_utils.download_and_extract_archive(cls.url, download_root=str(root),
                                              filename=cls.filename, md5=cls.tgz_md5)
    except OSError as err:  # URLError is an OSError
        raise UserError(f"downloading {name} into {root} failed ({err}); check the network and "
                        "that the folder is writable, or download it yourself") from None


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"missing file {path}; the CIFAR folder is incomplete, download it again "
                        "(--download) or pass the right --data-dir")
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, OSError) as err:
        raise UserError(f"cannot read CIFAR batch file {path} ({err}); the file is corrupt, "
                        "download the dataset again") from None


def load_cifar(name: str, base: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CIFAR-10/100 pickles -> (uint8 [N, 3, 32, 32], int64 [N], classes). split: train|test."""
    cls = _tv_class(name)
    files = {"train": cls.train_list, "test": cls.test_list}[split]
    images, targets = [], []
    for fname, _md5 in files:
        path = base / fname
        entry = _unpickle(path)
        labels = entry.get("labels", entry.get("fine_labels"))
        data = entry.get("data")
        if data is None or labels is None:
            raise UserError(f"{path} is not a CIFAR batch (no data/labels); pass the right "
                            "--data-dir")
        try:
            images.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32))
        except ValueError:
            raise UserError(f"{path}: data is not N x 3072 bytes; the file is corrupt, "
                            "download the dataset again") from None
        targets.append(np.asarray(labels, dtype=np.int64))
    meta = _unpickle(base / cls.meta["filename"])
    classes = [str(c) for c in meta[cls.meta["key"]]]
    return np.concatenate(images), np.concatenate(targets), classes


STL10_SPLITS = ("train", "test", "unlabeled", "train+unlabeled")


def _stl_images(path: Path) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"missing file {path}; the STL-10 folder is incomplete, download it "
                        "again (--download) or pass the right --data-dir")
    per_image = 3 * 96 * 96
    if path.stat().st_size % per_image:
        raise UserError(f"{path} is not a whole number of 96x96 RGB images; the file is "
                        "corrupt, download the dataset again")
    # Copy-on-write memory map: pages are read on first use (unlabeled is 2.8 GB).
    # Stored column-major per channel, hence the (H, W) transpose.
    return np.memmap(path, dtype=np.uint8, mode="c").reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)


def _stl_labels(path: Path, n: int) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"missing file {path}; download STL-10 again (--download)")
    y = np.fromfile(path, dtype=np.uint8).astype(np.int64) - 1  # files store 1..10
    if len(y) != n:
        raise UserError(f"{path} has {len(y)} labels for {n} images; download STL-10 again")
    return y


def load_stl10(base: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """STL-10 binaries -> (uint8 [N, 3, 96, 96], int64 [N], classes); unlabeled targets are -1.

    split: train (5k labelled) | test (8k) | unlabeled (100k) | train+unlabeled (105k, the usual
    SSL pretraining set).
    """
    if split not in STL10_SPLITS:
        raise UserError(f"unknown stl10 split {split!r}; use one of {', '.join(STL10_SPLITS)}")
    parts = []
    for part in split.split("+"):
        x = _stl_images(base / f"{part}_X.bin")
        if part == "unlabeled":
            y = np.full(len(x), -1, dtype=np.int64)
        else:
            y = _stl_labels(base / f"{part}_y.bin", len(x))
        parts.append((x, y))
    names = base / "class_names.txt"
    classes = names.read_text().split() if names.is_file() else [str(i) for i in range(10)]
    if len(parts) == 1:
        return parts[0][0], parts[0][1], classes
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            classes)
