"""ImageFolder trees (root/<class>/<image>): scanning, and decoding files with a clear error.

Class order and file order are sorted by name, as torchvision's `ImageFolder`, so class indices
agree with it. Scanning costs one `stat` per file (used by the cache fingerprint).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dimcollapse.errors import UserError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class FolderIndex:
    """The files of one ImageFolder split: paths[i] has class targets[i] (index into classes)."""

    root: Path
    classes: list[str]
    paths: list[str]  # relative to root
    targets: list[int]
    stats: list[tuple[str, int, int]]  # (relative path, size in bytes, mtime_ns)


def scan_folder(root: Path) -> FolderIndex:
    """Index root/<class>/**/<image>. UserError when root is missing, empty or has no classes."""
    if not root.exists():
        raise UserError(f"no such folder: {root}; pass the path of an ImageFolder tree "
                        "(root/<class>/<image files>)")
    if not root.is_dir():
        raise UserError(f"not a folder: {root}; pass an ImageFolder tree root/<class>/<images>")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise UserError(f"no class folders in {root}; an ImageFolder tree needs one sub-folder per "
                        "class holding that class's images (root/<class>/<image>)")
    paths: list[str] = []
    targets: list[int] = []
    stats: list[tuple[str, int, int]] = []
    for label, cls in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / cls, followlinks=True):
            dirnames.sort()
            for fn in sorted(filenames):
                if not fn.lower().endswith(IMG_EXTENSIONS):
                    continue
                full = os.path.join(dirpath, fn)
                st = os.stat(full)
                rel = os.path.relpath(full, root)
                paths.append(rel)
                targets.append(label)
                stats.append((rel, st.st_size, st.st_mtime_ns))
    if not paths:
        raise UserError(f"no images in {root} (looked for {', '.join(IMG_EXTENSIONS)} files in "
                        f"{len(classes)} class folders); check the path")
    return FolderIndex(root, classes, paths, targets, stats)


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode an image file fully into RGB; UserError naming the file if it cannot be decoded."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise UserError(f"cannot decode image {path} ({err}); delete or replace the file") from None


def decode_chunk(root: str, paths: list[str], size: tuple[int, ...] | None) -> np.ndarray:
    """Decode files to uint8 [n, H, W, 3]; all must be `size` = (H, W) (None: take the first's).

    A module-level function so multiprocessing workers can run it.
    """
    out = None
    for k, rel in enumerate(paths):
        arr = np.asarray(open_rgb(os.path.join(root, rel)))
        if out is None:
            size = size or arr.shape[:2]
            out = np.empty((len(paths), size[0], size[1], 3), dtype=np.uint8)
        assert size is not None  # set with `out` on the first file
        if arr.shape[:2] != tuple(size):
            raise UserError(
                f"image {os.path.join(root, rel)} is {arr.shape[1]}x{arr.shape[0]} but the others "
                f"are {size[1]}x{size[0]}; a cached small-image dataset needs one image size "
                "(use --dataset imagefolder for mixed sizes)")
        out[k] = arr
    assert out is not None, "decode_chunk needs at least one path"
    return out
