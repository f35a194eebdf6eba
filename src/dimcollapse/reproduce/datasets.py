"""Finding a dataset on this machine: --data-dir, $DIMCOLLAPSE_DATA, or ../shared/datasets.

Used by `reproduce` (the cpu/cifar presets default to CIFAR-10) and by the demo's image
section. Nothing is downloaded here; `how_to_get` says how to.
"""

from __future__ import annotations

import os
from pathlib import Path

from dimcollapse.errors import UserError

ENV = "DIMCOLLAPSE_DATA"
REPO = Path(__file__).resolve().parents[3]  # src/dimcollapse/reproduce/ -> repository root


def _looks_like(name: str, root: Path) -> bool:
    """root holds train/ and test/ class folders, or torchvision's CIFAR pickles."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        return True
    tv = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}.get(name)
    return tv is not None and (root / tv).is_dir()


def candidates(name: str) -> list[Path]:
    """Where `find_dataset` looks, in order (without an explicit --data-dir)."""
    out = []
    env = os.environ.get(ENV)
    if env:
        out += [Path(env).expanduser() / name, Path(env).expanduser()]
    for base in (Path.cwd(), REPO):
        out.append((base / ".." / "shared" / "datasets" / name).resolve())
    seen, unique = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def find_dataset(name: str = "cifar10", data_dir: str | os.PathLike | None = None
                 ) -> Path | None:
    """The first folder holding `name`: `data_dir` if given (UserError when it lacks the data),
    else $DIMCOLLAPSE_DATA/<name>, $DIMCOLLAPSE_DATA, ../shared/datasets/<name> relative to the
    current folder and to the repository. None when nothing is found."""
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise UserError(f"--data-dir {root} does not exist: {how_to_get(name)}")
        return root
    for root in candidates(name):
        if root.is_dir() and _looks_like(name, root):
            return root
    return None


def how_to_get(name: str = "cifar10") -> str:
    """One line on how to get the dataset (needs a network)."""
    return (f"get {name} with `dimcollapse train --preset cpu --download --data-dir DIR "
            f"--max-steps 1 --out /tmp/x` (torchvision downloads it into DIR) or "
            f"`python -c \"import torchvision; torchvision.datasets.CIFAR10('DIR', "
            f"download=True)\"`, then pass --data-dir DIR or set ${ENV}")
