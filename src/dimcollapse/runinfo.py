"""Run provenance and atomic file writes shared by every command that writes results.

Atomic means: write to a temporary file in the same folder, flush and fsync, then `os.replace`,
so a killed process leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from dimcollapse import __version__

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(file)` on a temp file in `path`'s folder, fsync, then rename it to `path`.

    A killed process leaves the old file or the new one, never a torn one (checkpoints,
    feature caches and results all go through here). Returns `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results should read like any file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically. Floats keep full precision (repr)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode())


def git_sha(repo_dir: str | os.PathLike | None = None) -> str | None:
    """The git commit of the dimcollapse source tree (with "-dirty" if modified), or None."""
    repo_dir = Path(repo_dir) if repo_dir else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo_dir, capture_output=True, text=True, timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(package: str) -> str | None:
    # importlib.metadata, not `import torch`: importing torch costs ~0.5 GiB and seconds.
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def command_line() -> str:
    """The command as the user would retype it (`python -m dimcollapse` shows as dimcollapse)."""
    prog = Path(sys.argv[0]).name
    if prog in ("__main__.py", "-m"):
        prog = "dimcollapse"
    return shlex.join([prog, *sys.argv[1:]])


def run_metadata() -> dict[str, Any]:
    """What produced a result: command line, git sha, versions, host, UTC time."""
    return {
        "command": command_line(),
        "git_sha": git_sha(),
        "dimcollapse": __version__,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
