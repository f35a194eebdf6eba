"""The numpy / torch difference of the streaming spectrum, expressed once: an `ArrayOps` object.

`Moments`, `DiagMoments` and `SpectrumAccumulator` hold one `ArrayOps` chosen at construction
and write their arithmetic once against it; the operators (+, -, *, /, [...] =) are common to
both array types, everything else goes through these methods.

- `NumpyOps` (CPU): numpy's matmul calls BLAS `syrk` for Y^T @ Y (half a GEMM's work; torch's
  CPU matmul does a full GEMM), and this path never imports torch, whose import alone adds
  ~580 MiB to peak RSS with a CUDA build of torch (measured);
- `TorchOps(device)` (CUDA, or CPU on request): the batch stays on its device, the state lives
  there too.

`BACKENDS` maps the names accepted by `SpectrumAccumulator(backend=...)` to factories
``(device: str) -> ArrayOps``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dimcollapse.spectrum.covariance import NORMALIZE_EPS, is_tensor

PRECISIONS = ("float64", "float32")


class ArrayOps(Protocol):
    """What the moments need from an array library. Arrays are float64 unless a precision
    (one of PRECISIONS) is named; "rows" are (m, d) matrices, reductions run over the rows."""

    @property
    def name(self) -> str:
        """The key in BACKENDS (read-only: the backends are frozen dataclasses)."""

    @property
    def device(self) -> Any:
        """The torch device of the state, None for numpy."""

    @property
    def device_name(self) -> str:
        """The device as a string ("cpu", "cuda:0")."""

    def zeros(self, *shape: int) -> Any:
        """float64 zeros of this shape, on the device."""

    def from_batch(self, batch) -> Any:
        """A caller's batch (numpy or torch, real dtype) on the device, not copied if there."""

    def rows(self, x, precision: str, owned: bool) -> tuple[Any, bool]:
        """x in `precision` on the device (numpy: C-contiguous); owned: True when x is (now) a
        private copy the caller may modify in place."""

    def work_copy(self, x, precision: str) -> Any:
        """A private, C-contiguous copy of x in `precision`."""

    def cast(self, a, precision: str) -> Any:
        """a in `precision` (a copy)."""

    def normalize_rows_(self, x) -> Any:
        """x_i / max(||x_i||, NORMALIZE_EPS) in place (as torch.nn.functional.normalize); x."""

    def mean_rows(self, x) -> Any:
        """Mean over rows with float64 accumulation. Shape: (m, d) -> (d,)."""

    def sum_rows(self, x) -> Any:
        """Sum over rows with float64 accumulation. Shape: (m, d) -> (d,)."""

    def subtract(self, x, v, *, inplace: bool) -> Any:
        """x - v (v broadcast over rows), written into x when inplace."""

    def add_gram_(self, gram, y) -> None:
        """gram += y^T y, the product taken in y's dtype, the sum in float64 (gram's)."""

    def outer(self, a, b) -> Any:
        """a b^T. Shape: (d,), (d,) -> (d, d)."""

    def asarray(self, a) -> Any:
        """A float64 numpy array or tensor, as this backend's array on its device."""


def to_numpy(a) -> np.ndarray:
    """A numpy array (a view for numpy and CPU tensors)."""
    if isinstance(a, np.ndarray):
        return a
    return a.detach().cpu().numpy()


@dataclass(frozen=True)
class NumpyOps:
    """The CPU backend: numpy arrays, BLAS syrk for the Gram, no torch import."""

    name: str = "numpy"

    @property
    def device(self) -> None:
        return None

    @property
    def device_name(self) -> str:
        return "cpu"

    def zeros(self, *shape: int) -> np.ndarray:
        return np.zeros(shape)

    def from_batch(self, batch) -> np.ndarray:
        if is_tensor(batch):
            if str(batch.dtype) == "torch.bfloat16":  # numpy has no bfloat16
                batch = batch.float()
            batch = batch.cpu().numpy()
        if batch.dtype.kind not in "fiu":
            raise ValueError(f"embeddings must be real numbers, got dtype {batch.dtype}")
        return batch

    def rows(self, x, precision: str, owned: bool) -> tuple[np.ndarray, bool]:
        x = np.asarray(x)
        dt = np.dtype(precision)
        if x.dtype != dt or not x.flags.c_contiguous:
            return np.array(x, dtype=dt, order="C"), True
        return x, owned

    def work_copy(self, x, precision: str) -> np.ndarray:
        return np.array(x, dtype=np.dtype(precision), order="C")

    def cast(self, a, precision: str) -> np.ndarray:
        return a.astype(np.dtype(precision))

    def normalize_rows_(self, x) -> np.ndarray:
        x /= np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x)), NORMALIZE_EPS)[:, None]
        return x

    def mean_rows(self, x) -> np.ndarray:
        return x.mean(axis=0, dtype=np.float64)

    def sum_rows(self, x) -> np.ndarray:
        return x.sum(axis=0, dtype=np.float64)

    def subtract(self, x, v, *, inplace: bool) -> np.ndarray:
        return np.subtract(x, v, out=x) if inplace else x - v

    def add_gram_(self, gram, y) -> None:
        gram += y.T @ y  # numpy dispatches Y^T @ Y to BLAS syrk

    def outer(self, a, b) -> np.ndarray:
        return np.outer(a, b)

    def asarray(self, a) -> np.ndarray:
        return to_numpy(a)


@dataclass(frozen=True)
class TorchOps:
    """The torch backend: tensors on `device` (a torch.device)."""

    torch_device: Any
    name: str = "torch"

    @property
    def device(self):
        return self.torch_device

    @property
    def device_name(self) -> str:
        return str(self.torch_device)

    @property
    def _torch(self):
        import torch  # only the torch backend needs torch; NumpyOps must not import it

        return torch

    def zeros(self, *shape: int):
        torch = self._torch
        return torch.zeros(shape, dtype=torch.float64, device=self.torch_device)

    def from_batch(self, batch):
        torch = self._torch
        if not is_tensor(batch):
            batch = torch.from_numpy(np.ascontiguousarray(batch))
        if batch.is_complex() or batch.dtype == torch.bool:
            raise ValueError(f"embeddings must be real numbers, got {batch.dtype}")
        return batch.to(self.torch_device)

    def rows(self, x, precision: str, owned: bool):
        torch = self._torch
        return torch.as_tensor(x).to(device=self.torch_device, dtype=getattr(torch, precision)), \
            owned

    def work_copy(self, x, precision: str):
        return x.to(dtype=getattr(self._torch, precision), copy=True).contiguous()

    def cast(self, a, precision: str):
        return a.to(getattr(self._torch, precision))

    def normalize_rows_(self, x):
        x /= x.norm(dim=1, keepdim=True).clamp_min(NORMALIZE_EPS)
        return x

    def mean_rows(self, x):
        return x.mean(dim=0, dtype=self._torch.float64)

    def sum_rows(self, x):
        return x.sum(dim=0, dtype=self._torch.float64)

    def subtract(self, x, v, *, inplace: bool):
        return x.sub_(v) if inplace else x - v

    def add_gram_(self, gram, y) -> None:
        if y.dtype == self._torch.float64:
            gram.addmm_(y.T, y)
        else:
            gram += (y.T @ y).double()

    def outer(self, a, b):
        return self._torch.outer(a, b)

    def asarray(self, a):
        torch = self._torch
        t = torch.from_numpy(a) if isinstance(a, np.ndarray) else a
        return t.to(self.torch_device)


def _numpy_ops(device: str) -> NumpyOps:
    if device != "cpu":
        raise ValueError(f"the numpy backend keeps its state on the CPU, not {device}")
    return NumpyOps()


def _torch_ops(device: str) -> TorchOps:
    # torch: only the torch backend needs it (the numpy backend runs without torch)
    import torch

    return TorchOps(torch.device(device))


BACKENDS: dict[str, Callable[[str], ArrayOps]] = {"numpy": _numpy_ops, "torch": _torch_ops}
NUMPY = NumpyOps()


def ops_for(backend: str, device: str) -> ArrayOps:
    """The backend called `backend` (a BACKENDS key) with its state on `device`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {tuple(BACKENDS)}, got {backend!r}")
    return BACKENDS[backend](device)
