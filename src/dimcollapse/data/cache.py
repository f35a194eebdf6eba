"""The decoded-image cache: uint8 arrays of small-image datasets, keyed by a cheap fingerprint.

Location (first that is set): the `cache_dir` argument, `$DIMCOLLAPSE_CACHE`,
`$XDG_CACHE_HOME/dimcollapse`, `~/.cache/dimcollapse`. Never inside the data folder, which may be
read-only or shared.

A cache file is `<name>-<split>-<hash of root>-<fingerprint>.npz` holding `images` uint8
[N, 3, H, W], `targets` int64 [N] and `classes` (str). The fingerprint hashes every image file's
relative path, size and mtime (one `stat` each, no reads), so touching, adding, removing or
replacing a file makes a new key; files of the same dataset with an older key are deleted when
the new one is written. Writes are atomic (temp file + rename) and guarded by a lock file, so
concurrent processes (torchrun ranks) decode once and never read a torn file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

CACHE_FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """$DIMCOLLAPSE_CACHE, else $XDG_CACHE_HOME/dimcollapse, else ~/.cache/dimcollapse."""
    if os.environ.get("DIMCOLLAPSE_CACHE"):
        return Path(os.environ["DIMCOLLAPSE_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "dimcollapse"
    return Path.home() / ".cache" / "dimcollapse"


def fingerprint(root: Path, entries: Sequence[tuple[str, int, int]]) -> str:
    """sha256 over (format version, entries of (relative path, size, mtime_ns)). Hex, 16 chars."""
    h = hashlib.sha256(f"dimcollapse-cache-v{CACHE_FORMAT_VERSION}\n".encode())
    for rel, size, mtime in entries:
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()[:16]


def cache_prefix(name: str, split: str, root: Path) -> str:
    """Stable per-(dataset, split, absolute root) part of the cache file name."""
    split_tag = split.replace("/", "_").replace("+", "_")
    root_tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    return f"{name}-{split_tag}-{root_tag}"


def load(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(images, targets, classes) from a cache file, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["images"], z["targets"].astype(np.int64), [str(c) for c in z["classes"]]
    except (OSError, ValueError, KeyError, EOFError) as err:
        print(f"dimcollapse: ignoring unreadable cache file {path} ({err})", file=sys.stderr)
        return None


def save(path: Path, images: np.ndarray, targets: np.ndarray, classes: Sequence[str]) -> bool:
    """Write atomically; remove older files with the same prefix. False (with a warning) when the
    cache folder is not writable: caching is an optimisation, never a reason to fail."""
    prefix = path.name.rsplit("-", 1)[0]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, images=images, targets=targets, classes=np.array(list(classes), dtype=str))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        print(f"dimcollapse: could not write the image cache {path} ({err}); set "
              "DIMCOLLAPSE_CACHE to a writable folder to avoid decoding again", file=sys.stderr)
        return False
    for old in path.parent.glob(f"{prefix}-*.npz"):
        if old != path:
            with contextlib.suppress(OSError):
                old.unlink()
    return True


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Exclusive lock on `path`.lock (POSIX flock) while decoding; a no-op where unsupported."""
    try:
        # fcntl: POSIX only (the ImportError branch is the fallback)
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
