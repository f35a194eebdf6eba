"""Sum-reducible first and second moments of a stream of rows: the state of `SpectrumAccumulator`.

For rows x_i in R^d we keep, in float64,

    n,   s = sum_i (x_i - a),   G = sum_i (x_i - a)(x_i - a)^T

about a fixed shift vector a (the mean of the first batch). Shifting keeps the centred
scatter G - s s^T / n free of cancellation when the mean is large next to the spread (typical
for L2-normalised embeddings that share a direction), which matters when the batch products are
taken in float32. Two states with different shifts merge exactly (`rebased`), so the state is
sum-reducible: merge in any order, or all-reduce across processes.

Two backends with the same arithmetic:
- "numpy" (CPU): numpy's matmul calls BLAS `syrk` for Y^T @ Y (half a GEMM's work; torch's CPU
  matmul does a full GEMM), and the CPU path never imports torch, whose import alone adds
  ~580 MiB to peak RSS with a CUDA build of torch (measured);
- "torch" (CUDA, or CPU on request): the batch stays on its device, the state lives there too.
"""

from __future__ import annotations

import numpy as np

PRECISIONS = ("float64", "float32")
BACKENDS = ("numpy", "torch")


class Moments:
    """n, shift a, s = sum (x - a), G = sum (x - a)(x - a)^T over the rows seen.

    Shapes: shift, s (d,); G (d, d).

    precision: dtype of the per-batch products; the running sums are always float64.
    shifted=False keeps a = 0 (plain uncentred sums).
    backend "numpy" (state: numpy arrays, device None) or "torch" (state: tensors on device).
    """

    def __init__(self, dim: int, *, precision: str = "float64", shifted: bool = True,
                 backend: str = "numpy", device=None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.dim = int(dim)
        self.precision = precision
        self.shifted = shifted
        self.backend = backend
        if backend == "torch":
            import torch

            self.xp = torch
            self.device = torch.device(device if device is not None else "cpu")
        else:
            self.xp = np
            self.device = None
        self.n = 0
        self.shift = self._zeros(dim)
        self.sum = self._zeros(dim)
        self.gram = self._zeros(dim, dim)

    def _zeros(self, *shape):
        if self.backend == "torch":
            return self.xp.zeros(shape, dtype=self.xp.float64, device=self.device)
        return np.zeros(shape)

    def _empty_like_self(self, backend: str, device) -> Moments:
        return Moments(self.dim, precision=self.precision, shifted=self.shifted,
                       backend=backend, device=device)

    # -- updates ---------------------------------------------------------------------------
    def update(self, x, *, owned: bool = False) -> None:
        """Add rows x of shape (m, d): a numpy array (numpy backend) or a tensor (torch backend).

        owned=True lets us subtract the shift in place (x is the caller's scratch copy).
        """
        if x.shape[0] == 0:
            return
        if self.backend == "numpy":
            self._update_numpy(np.asarray(x), owned)
        else:
            self._update_torch(x)

    def _update_numpy(self, x: np.ndarray, owned: bool) -> None:
        dt = np.dtype(self.precision)
        if x.dtype != dt or not x.flags.c_contiguous:
            x, owned = np.array(x, dtype=dt, order="C"), True
        if self.shifted:
            if self.n == 0:
                # Keep exactly the shift that is subtracted (rounded to the product dtype).
                self.shift[...] = x.mean(axis=0, dtype=np.float64).astype(dt)
            shift = self.shift.astype(dt)
            y = np.subtract(x, shift, out=x) if owned else x - shift
        else:
            y = x
        self.sum += y.sum(axis=0, dtype=np.float64)
        self.gram += y.T @ y  # numpy dispatches Y^T @ Y to BLAS syrk
        self.n += int(y.shape[0])

    def _update_torch(self, x) -> None:
        torch = self.xp
        dt = getattr(torch, self.precision)
        x = torch.as_tensor(x).to(device=self.device, dtype=dt)
        if self.shifted:
            if self.n == 0:
                self.shift[...] = x.mean(dim=0, dtype=torch.float64).to(dt).double()
            y = x - self.shift.to(dt)
        else:
            y = x
        self.sum += y.sum(dim=0, dtype=torch.float64)
        if dt == torch.float64:
            self.gram.addmm_(y.T, y)
        else:
            self.gram += (y.T @ y).double()
        self.n += int(y.shape[0])

    # -- merging ---------------------------------------------------------------------------
    def rebased(self, shift):
        """(s, G) about another shift b, exactly in float64:
        with delta = a - b, s' = s + n delta, G' = G + s delta^T + delta s^T + n delta delta^T."""
        delta = self.shift - shift
        s = self.sum + self.n * delta
        g = self.gram + self.xp.outer(self.sum, delta) + self.xp.outer(delta, self.sum)
        g += self.n * self.xp.outer(delta, delta)
        return s, g

    def to(self, backend: str, device=None) -> Moments:
        """This state on another backend/device (self if already there)."""
        if backend == self.backend and (backend == "numpy" or self.device == device):
            return self
        out = self._empty_like_self(backend, device)
        out.n = self.n
        for name in ("shift", "sum", "gram"):
            value = _to_numpy(getattr(self, name))
            if backend == "torch":
                value = out.xp.from_numpy(value).to(out.device)
            getattr(out, name)[...] = value
        return out

    def merge_(self, other: Moments) -> Moments:
        """Add another state over other rows (any shift, backend or device) into this one."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge dim {other.dim} into dim {self.dim}")
        if other.n == 0:
            return self
        other = other.to(self.backend, self.device)
        if self.n == 0:
            self.shift[...] = other.shift
        s, g = other.rebased(self.shift)
        self.sum += s
        self.gram += g
        self.n += other.n
        return self

    def all_reduce_(self) -> Moments:
        """Sum this state over all processes of the default torch.distributed group (in place).

        Every rank first re-expresses its sums about rank 0's shift (broadcast), so the sums
        add. A no-op when torch.distributed is not initialised or the world has one process.
        A numpy state travels as a CPU tensor (gloo); a torch state uses its own device.
        """
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        state = self.to("torch", self.device if self.backend == "torch" else "cpu")
        # Rank 0 with no rows has shift 0; any common shift is exact, it only affects rounding.
        common = state.shift.clone()
        dist.broadcast(common, src=0)
        s, g = state.rebased(common)
        count = torch.tensor([float(self.n)], dtype=torch.float64, device=state.device)
        packed = torch.cat([count, s, g.reshape(-1)])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        packed = packed if self.backend == "torch" else packed.numpy()
        common = common if self.backend == "torch" else common.numpy()
        self.n = int(round(float(packed[0])))
        self.shift[...] = common
        self.sum[...] = packed[1:1 + self.dim]
        self.gram[...] = packed[1 + self.dim:].reshape(self.dim, self.dim)
        return self

    # -- results ---------------------------------------------------------------------------
    def mean(self) -> np.ndarray:
        """Mean of the rows, float64. Shape: (d,)."""
        return _to_numpy(self.shift + self.sum / self.n)

    def scatter(self, *, center: bool) -> np.ndarray:
        """sum (x - x_bar)(x - x_bar)^T if center, else sum x x^T; float64 numpy. Shape: (d, d)."""
        if center:
            g = self.gram - self.xp.outer(self.sum, self.sum) / self.n
        else:
            _, g = self.rebased(self._zeros(self.dim))
        g = _to_numpy(g)
        g += g.T  # exact symmetry; the eigensolver reads one triangle anyway
        g *= 0.5
        return g


class DiagMoments:
    """The diagonal of `Moments`: n, shift a, s = sum (x - a), q = sum (x - a)^2. Shapes: (d,).

    Per-dimension variances at O(d) memory; float64; same backends and merge rules as `Moments`.
    """

    def __init__(self, dim: int, *, backend: str = "numpy", device=None):
        self.dim = int(dim)
        self.backend = backend
        if backend == "torch":
            import torch

            self.xp, self.device = torch, torch.device(device if device is not None else "cpu")
        else:
            self.xp, self.device = np, None
        self.n = 0
        self.shift, self.sum, self.sumsq = (self._zeros() for _ in range(3))

    def _zeros(self):
        if self.backend == "torch":
            return self.xp.zeros(self.dim, dtype=self.xp.float64, device=self.device)
        return np.zeros(self.dim)

    def update(self, x) -> None:
        """Add rows (m, d): a numpy array or tensor matching the backend."""
        if x.shape[0] == 0:
            return
        if self.backend == "numpy":
            x = np.asarray(x, dtype=np.float64)
        else:
            x = self.xp.as_tensor(x).to(device=self.device, dtype=self.xp.float64)
        if self.n == 0:
            self.shift[...] = x.mean(0)
        y = x - self.shift
        self.sum += y.sum(0)
        self.sumsq += (y * y).sum(0)
        self.n += int(x.shape[0])

    def _arrays_as(self, like: DiagMoments):
        """(shift, sum, sumsq) converted to `like`'s backend and device."""
        out = []
        for a in (self.shift, self.sum, self.sumsq):
            a = _to_numpy(a)
            out.append(like.xp.from_numpy(a).to(like.device) if like.backend == "torch" else a)
        return out

    def merge_(self, other: DiagMoments) -> DiagMoments:
        if other.n == 0:
            return self
        shift, s, q = other._arrays_as(self)
        if self.n == 0:
            self.shift[...] = shift
        delta = shift - self.shift
        self.sumsq += q + 2 * delta * s + other.n * delta * delta
        self.sum += s + other.n * delta
        self.n += other.n
        return self

    def all_reduce_(self) -> DiagMoments:
        """Sum over all processes (see `Moments.all_reduce_`)."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        tensors = [torch.as_tensor(a).clone() for a in (self.shift, self.sum, self.sumsq)]
        shift, s, q = tensors
        common = shift.clone()
        dist.broadcast(common, src=0)
        delta = shift - common
        s, q = s + self.n * delta, q + 2 * delta * s + self.n * delta * delta
        packed = torch.cat([torch.tensor([float(self.n)], dtype=torch.float64,
                                         device=common.device), s, q])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        if self.backend == "numpy":
            packed, common = packed.numpy(), common.numpy()
        d = self.dim
        self.n = int(round(float(packed[0])))
        self.shift[...] = common
        self.sum[...] = packed[1:1 + d]
        self.sumsq[...] = packed[1 + d:]
        return self

    def variance(self, *, ddof: int = 0) -> np.ndarray:
        """Per-dimension variance, float64 numpy. Shape: (d,)."""
        v = _to_numpy((self.sumsq - self.sum * self.sum / self.n) / (self.n - ddof))
        return np.maximum(v, 0.0)


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    return a.detach().cpu().numpy()
