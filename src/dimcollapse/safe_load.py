"""Reading `torch.save` files without running code from them, and saying so when that fails.

`torch.load(weights_only=True)` unpickles only tensors, containers and an allow-list of types,
so a checkpoint cannot execute code on load. Two kinds of file users have need a little more:

- the official DirectCLR per-epoch `checkpoint.pth`: its LARS optimizer state stores the
  parameter filter *function* `exclude_bias_and_norm` (module `utils`, or `__main__`) in each
  param group. We allow exactly those names, bound to an inert placeholder that raises if
  called; the optimizer state is never used for evaluation.
- numpy arrays and scalars (e.g. `np.random.get_state()` saved among RNG states): allowed
  through the reconstruction functions PyTorch's documentation lists for numpy.

Anything else that weights_only refuses is refused with a `UserError` that names the Python
objects the file references; with `allow_unsafe=True` (the CLI's `--unsafe-load`) the file is
loaded with `weights_only=False` after an `UnsafeLoadWarning` that says why. Only do that for
files you trust: unpickling can run arbitrary code.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from dimcollapse.errors import UserError


class UnsafeLoadWarning(UserWarning):
    """A checkpoint was loaded with torch.load(weights_only=False) on the user's request."""


def _official_lars_filter_placeholder(*args, **kwargs):
    """Stands in for DirectCLR's `exclude_bias_and_norm` in an unpickled optimizer state."""
    raise RuntimeError(
        "placeholder for the official DirectCLR LARS parameter filter: not callable; "
        "rebuild the optimizer with dimcollapse.optim instead"
    )


def _numpy_allow_list() -> list:
    items: list = [np.ndarray, np.dtype]
    items += sorted({type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFDG"}, key=lambda t: t.__name__)
    core = getattr(np, "_core", None) or np.core
    reconstruct, scalar = core.multiarray._reconstruct, core.multiarray.scalar
    # Pickles written under numpy 1.x name `numpy.core.multiarray`, under 2.x `numpy._core...`.
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        items += [(reconstruct, f"{mod}._reconstruct"), (scalar, f"{mod}.scalar")]
    return items


_SAFE_GLOBALS = [
    (_official_lars_filter_placeholder, f"{mod}.exclude_bias_and_norm")
    for mod in ("utils", "__main__", "main")
] + _numpy_allow_list()


def torch_load(path: str | os.PathLike, *, allow_unsafe: bool = False) -> tuple[object, bool]:
    """Load a `torch.save` file onto the CPU; returns (object, loaded_with_weights_only).

    Raises UserError for a missing path, a directory, an unreadable file, or (unless
    `allow_unsafe`) a file that weights_only loading refuses.
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"no such checkpoint file: {p}; pass the path of a .pt/.pth file")
    if p.is_dir():
        raise UserError(f"{p} is a folder: pass the checkpoint file inside it")
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            return torch.load(p, map_location="cpu", weights_only=True), True
    except pickle.UnpicklingError as err:
        reason = _refusal_reason(p, err)
        if reason is None:
            raise _unreadable(p, "not a valid pickle") from None
    except Exception as err:  # noqa: BLE001 - garbage input fails in many ways (KeyError, ...)
        raise _unreadable(p, _first_line(err)) from None
    if not allow_unsafe:
        raise UserError(
            f"{p} cannot be loaded with torch.load(weights_only=True) because it references "
            f"{reason}; if you trust the file, re-run with --unsafe-load (allow_unsafe=True), "
            "which unpickles it fully and can run code stored in it"
        )
    warnings.warn(
        f"loading {p} with torch.load(weights_only=False) because weights_only=True refused it "
        f"(it references {reason}); this can run code stored in the file",
        UnsafeLoadWarning,
        stacklevel=2,
    )
    try:
        return torch.load(p, map_location="cpu", weights_only=False), False
    except Exception as err:  # noqa: BLE001 - any failure of a full unpickle is the file's
        raise UserError(
            f"{p} could not be unpickled even with weights_only=False "
            f"({type(err).__name__}: {_first_line(err)}): the objects it references are not "
            "importable here"
        ) from None


def _unreadable(p: Path, why: str) -> UserError:
    return UserError(
        f"{p} is not a readable PyTorch checkpoint ({why}): it is truncated or not a "
        "dimcollapse, DirectCLR or torchvision checkpoint; pass a file written by torch.save "
        "(a torn checkpoint_last.pt: delete it to start over)")


def _refusal_reason(p: Path, err: Exception) -> str | None:
    """Why weights_only refused `p` ("Python objects a.b, c.d"), or None if it is not a pickle."""
    if zipfile.is_zipfile(p):
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(p)
        except Exception:  # noqa: BLE001 - fall back to the message below
            names = []
        if names:
            return "Python objects not allowed by weights_only: " + ", ".join(sorted(names))
    found = re.findall(r"GLOBAL (\S+) was not an allowed global", str(err))
    if found:
        return "Python objects not allowed by weights_only: " + ", ".join(sorted(set(found)))
    return None


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."
