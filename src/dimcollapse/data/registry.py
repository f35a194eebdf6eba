"""DATASETS registry and `build_dataset`, the one entry point to the data.

| name        | root holds                                                | splits          |
|-------------|-----------------------------------------------------------|-----------------|
| cifar10     | cifar-10-batches-py/ (torchvision) or train/, test/ trees | train, test     |
| cifar100    | cifar-100-python/ (torchvision) or train/, test/ trees    | train, test     |
| stl10       | stl10_binary/ (torchvision)                               | train, test,    |
|             |                                                           | unlabeled,      |
|             |                                                           | train+unlabeled |
| imagefolder | <split>/<class>/<image> (e.g. ImageNet train/, val/)      | any sub-folder  |

CIFAR and STL-10 are resident (uint8 in memory); an ImageFolder tree of CIFAR images is decoded
once and cached (see `data.cache`). `imagefolder` streams by default (resident=True caches it
like CIFAR when all images share one size).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dimcollapse import catalogue
from dimcollapse.data import tvformats
from dimcollapse.data.dataset import IMAGENET_MEAN, IMAGENET_STD, ImageDataset
from dimcollapse.data.folder import scan_folder
from dimcollapse.data.identify import channel_stats, not_cifar_reason
from dimcollapse.data.resident import load_folder_cached
from dimcollapse.data.subset import balanced_subset
from dimcollapse.errors import UserError

# Per-channel RGB statistics of the training split, on [0, 1] pixels (normalisation only).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


def _split_folder(name: str, root: Path, split: str) -> Path:
    folder = root / split
    if not folder.is_dir():
        subs = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        hint = f"it has {', '.join(subs)}" if subs else "it has no sub-folders"
        raise UserError(f"no {split!r} split folder in {root} ({hint}); {name} expects "
                        f"{root}/{split}/<class>/<images>")
    return folder


def _resident(name: str, root: Path, split: str, images: np.ndarray, targets: np.ndarray,
              classes: list[str], mean, std) -> ImageDataset:
    return ImageDataset(name=name, split=split, root=root, classes=classes,
                        targets=torch.from_numpy(np.ascontiguousarray(targets)),
                        images=torch.from_numpy(images), mean=mean, std=std)


def _cifar(name: str, mean, std) -> Callable[..., ImageDataset]:
    def build(root: Path, split: str, *, download: bool, cache_dir, decode_workers, progress,
              resident) -> ImageDataset:
        if split not in ("train", "test"):
            raise UserError(f"unknown {name} split {split!r}; use train or test")
        base = tvformats.find_base(name, root)
        if base is None and not (root / split).is_dir():
            if not download:
                raise UserError(
                    f"no {name} data in {root}: expected torchvision's "
                    f"{tvformats._tv_class(name).base_folder}/ folder or an ImageFolder tree "
                    f"{root}/{split}/<class>/<images>; fix --data-dir or pass --download")
            tvformats.download(name, root)
            base = tvformats.find_base(name, root)
            if base is None:
                raise UserError(f"download of {name} into {root} did not produce the expected "
                                "files; delete the folder and try again")
        if base is not None:
            images, targets, classes = tvformats.load_cifar(name, base, split)
            return _resident(name, root, split, images, targets, classes, mean, std)
        images, targets, classes = load_folder_cached(
            name, split, _split_folder(name, root, split), cache_dir=cache_dir,
            workers=decode_workers, progress=progress)
        reason = not_cifar_reason(name, classes, tuple(images.shape[-2:]))
        if reason is None:
            return _resident(name, root, split, images, targets, classes, mean, std)
        # Not the named dataset: name it as what it is and normalise with its own train split's
        # statistics (both splits use the train split's, as they would the CIFAR constants).
        train = images if split == "train" else load_folder_cached(
            name, "train", _split_folder(name, root, "train"), cache_dir=cache_dir,
            workers=decode_workers, progress=progress)[0]
        own_mean, own_std = channel_stats(train)
        note = (f"{root} is not {name} ({reason}): using it as imagefolder, normalised with "
                f"its own train-split mean {own_mean} and std {own_std} (computed from the "
                f"decoded images) instead of {name}'s")
        ds = _resident("imagefolder", root, split, images, targets, classes, own_mean, own_std)
        ds.note = note
        return ds
    return build


def _stl10(root: Path, split: str, *, download: bool, cache_dir, decode_workers, progress,
           resident) -> ImageDataset:
    base = tvformats.find_base("stl10", root)
    if base is None:
        if not download:
            raise UserError(f"no stl10 data in {root}: expected torchvision's stl10_binary/ "
                            "folder; fix --data-dir or pass --download")
        tvformats.download("stl10", root)
        base = tvformats.find_base("stl10", root)
        if base is None:
            raise UserError(f"download of stl10 into {root} did not produce the expected files")
    images, targets, classes = tvformats.load_stl10(base, split)
    return _resident("stl10", root, split, images, targets, classes, IMAGENET_MEAN, IMAGENET_STD)


def _imagefolder(root: Path, split: str, *, download: bool, cache_dir, decode_workers, progress,
                 resident) -> ImageDataset:
    if download:
        raise UserError("imagefolder datasets cannot be downloaded; drop --download and point "
                        "--data-dir at a folder holding <split>/<class>/<images>")
    folder = _split_folder("imagefolder", root, split)
    if resident:
        images, targets, classes = load_folder_cached(
            "imagefolder", split, folder, cache_dir=cache_dir, workers=decode_workers,
            progress=progress)
        return _resident("imagefolder", root, split, images, targets, classes,
                         IMAGENET_MEAN, IMAGENET_STD)
    index = scan_folder(folder)
    return ImageDataset(name="imagefolder", split=split, root=root, classes=index.classes,
                        targets=torch.tensor(index.targets, dtype=torch.int64),
                        files=[folder / p for p in index.paths],
                        mean=IMAGENET_MEAN, std=IMAGENET_STD)


DATASETS: dict[str, Callable[..., ImageDataset]] = {
    "cifar10": _cifar("cifar10", CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": _cifar("cifar100", CIFAR100_MEAN, CIFAR100_STD),
    "stl10": _stl10,
    "imagefolder": _imagefolder,
}
catalogue.DATASETS.check(DATASETS)


def register_dataset(name: str, factory: Callable[..., ImageDataset]) -> None:
    """Add `name` to DATASETS and the catalogue (`--dataset` accepts it). factory(root, split,
    *, download, cache_dir, decode_workers, progress, resident) -> ImageDataset."""
    catalogue.DATASETS.register(name, DATASETS, factory)


def build_dataset(name: str, root: str | Path, split: str, *, subset: int | None = None,
                  subset_seed: int = 0, download: bool = False,
                  cache_dir: str | Path | None = None, decode_workers: int | None = None,
                  progress: bool = True, resident: bool | None = None) -> ImageDataset:
    """Load split `split` of dataset `name` (a key of DATASETS) found under `root`.

    subset: keep a class-balanced, seed-determined subset of this many images (see
    `data.subset`). download: fetch torchvision's archive into root when absent (network).
    cache_dir: where decoded image trees are cached (default `data.cache.default_cache_dir()`).
    decode_workers: processes decoding a tree on a cache miss (default: CPUs, at most 8).
    progress: show a progress bar on stderr when it is a terminal. resident: imagefolder only,
    True decodes and caches the whole tree in memory (one image size required).
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if root is None or str(root) == "":
        raise UserError(f"no data folder given for {name}; pass --data-dir")
    root = Path(root).expanduser()
    if not root.exists() and not download:
        raise UserError(f"data folder {root} does not exist; fix --data-dir"
                        + ("" if name == "imagefolder" else " or pass --download to fetch it"))
    if resident is not None and name != "imagefolder":
        raise UserError(f"resident= applies to imagefolder only; {name} is always resident")
    ds = DATASETS[name](root, split, download=download,
                        cache_dir=None if cache_dir is None else Path(cache_dir),
                        decode_workers=decode_workers, progress=progress,
                        resident=bool(resident))
    if subset is not None:
        ds = ds.subset(balanced_subset(ds.targets, int(subset), subset_seed))
    return ds
