"""Decode an ImageFolder tree of small images once into a uint8 array, cached across runs.

Decoding uses a pool of processes (one chunk of files per task) and shows a progress bar; the
result is stored by `data.cache` and reused while no file changes.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dimcollapse.data import cache
from dimcollapse.data.folder import FolderIndex, decode_chunk, scan_folder

CHUNK_FILES = 512  # files per decode task: large enough to amortise IPC, small for a smooth bar


def _mp_context() -> mp.context.BaseContext:
    # fork starts workers in milliseconds; they only run PIL + numpy, never torch/OpenMP code.
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1), 8))


def decode_folder(index: FolderIndex, *, workers: int | None = None, progress: bool = True,
                  desc: str = "decoding") -> np.ndarray:
    """All images of `index` as uint8 [N, 3, H, W] (RGB). UserError names a corrupt file."""
    workers = default_workers() if workers is None else max(1, workers)
    root = str(index.root)
    first = decode_chunk(root, index.paths[:1], None)
    size = first.shape[1:3]
    out = np.empty((len(index.paths), 3, size[0], size[1]), dtype=np.uint8)
    chunks = [index.paths[i:i + CHUNK_FILES] for i in range(0, len(index.paths), CHUNK_FILES)]
    work = functools.partial(decode_chunk, root, size=size)
    show = progress and sys.stderr.isatty()
    bar = tqdm(total=len(index.paths), desc=desc, unit="img", disable=not show, file=sys.stderr)
    results: Iterator[np.ndarray]
    with bar:
        if workers == 1 or len(chunks) == 1:
            results = map(work, chunks)
            pool = None
        else:
            pool = _mp_context().Pool(min(workers, len(chunks)))
            results = pool.imap(work, chunks)
        try:
            start = 0
            for arr in results:
                out[start:start + len(arr)] = arr.transpose(0, 3, 1, 2)
                start += len(arr)
                bar.update(len(arr))
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    return out


def load_folder_cached(name: str, split: str, folder: Path, *, cache_dir: Path | None,
                       workers: int | None, progress: bool
                       ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images uint8 [N,3,H,W], targets int64 [N], classes) of an ImageFolder split, via cache."""
    index = scan_folder(folder)
    cache_dir = cache.default_cache_dir() if cache_dir is None else Path(cache_dir)
    fp = cache.fingerprint(folder, index.stats)
    path = cache_dir / f"{cache.cache_prefix(name, split, folder)}-{fp}.npz"
    hit = cache.load(path)
    if hit is not None:
        return hit
    with cache.locked(path):
        hit = cache.load(path)  # another process may have finished while we waited for the lock
        if hit is not None:
            return hit
        images = decode_folder(index, workers=workers, progress=progress,
                               desc=f"decoding {name}/{split} (once, cached)")
        targets = np.asarray(index.targets, dtype=np.int64)
        cache.save(path, images, targets, index.classes)
    return images, targets, index.classes
