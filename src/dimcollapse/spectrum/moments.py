"""Sum-reducible first and second moments of a stream of rows: the state of `SpectrumAccumulator`.

For rows x_i in R^d we keep, in float64,

    n,   s = sum_i (x_i - a),   G = sum_i (x_i - a)(x_i - a)^T

about a fixed shift vector a (the mean of the first batch). Shifting keeps the centred
scatter G - s s^T / n free of cancellation when the mean is large next to the spread (typical
for L2-normalised embeddings that share a direction), which matters when the batch products are
taken in float32. Two states with different shifts merge exactly (`rebased`), so the state is
sum-reducible: merge in any order, or all-reduce across processes.

The arithmetic is written once; the array library (numpy on the CPU, torch on a device) is an
`ArrayOps` object chosen at construction (`spectrum.backend`).
"""

from __future__ import annotations

import numpy as np

from dimcollapse.spectrum.backend import NUMPY, PRECISIONS, ArrayOps, TorchOps, to_numpy


class Moments:
    """n, shift a, s = sum (x - a), G = sum (x - a)(x - a)^T over the rows seen.

    Shapes: shift, s (d,); G (d, d).

    precision: dtype of the per-batch products; the running sums are always float64.
    shifted=False keeps a = 0 (plain uncentred sums).
    ops: the array backend (`spectrum.backend`): numpy arrays (default) or tensors on a device.
    """

    def __init__(self, dim: int, *, precision: str = "float64", shifted: bool = True,
                 ops: ArrayOps = NUMPY):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.dim = int(dim)
        self.precision = precision
        self.shifted = shifted
        self.ops = ops
        self.n = 0
        self.shift = ops.zeros(dim)
        self.sum = ops.zeros(dim)
        self.gram = ops.zeros(dim, dim)

    @property
    def device(self):
        """The state's torch device, None for numpy."""
        return self.ops.device

    # -- updates ---------------------------------------------------------------------------
    def update(self, x, *, owned: bool = False) -> None:
        """Add rows x of shape (m, d): a numpy array or tensor (moved to the state's backend).

        owned=True lets us subtract the shift in place (x is the caller's scratch copy).
        """
        if x.shape[0] == 0:
            return
        ops = self.ops
        x, owned = ops.rows(x, self.precision, owned)
        if self.shifted:
            if self.n == 0:
                # Keep exactly the shift that is subtracted (rounded to the product dtype).
                self.shift[...] = ops.cast(ops.mean_rows(x), self.precision)
            y = ops.subtract(x, ops.cast(self.shift, self.precision), inplace=owned)
        else:
            y = x
        self.sum += ops.sum_rows(y)
        ops.add_gram_(self.gram, y)
        self.n += int(y.shape[0])

    # -- merging ---------------------------------------------------------------------------
    def rebased(self, shift):
        """(s, G) about another shift b, exactly in float64:
        with delta = a - b, s' = s + n delta, G' = G + s delta^T + delta s^T + n delta delta^T."""
        delta = self.shift - shift
        s = self.sum + self.n * delta
        g = self.gram + self.ops.outer(self.sum, delta) + self.ops.outer(delta, self.sum)
        g += self.n * self.ops.outer(delta, delta)
        return s, g

    def to(self, ops: ArrayOps) -> Moments:
        """This state on another backend/device (self if already there)."""
        if ops == self.ops:
            return self
        out = Moments(self.dim, precision=self.precision, shifted=self.shifted, ops=ops)
        out.n = self.n
        for name in ("shift", "sum", "gram"):
            getattr(out, name)[...] = ops.asarray(to_numpy(getattr(self, name)))
        return out

    def merge_(self, other: Moments) -> Moments:
        """Add another state over other rows (any shift, backend or device) into this one."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge dim {other.dim} into dim {self.dim}")
        if other.n == 0:
            return self
        other = other.to(self.ops)
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
        import torch  # distributed runs only: the numpy backend must not import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        state = self.to(TorchOps(self.ops.device or torch.device("cpu")))
        # Rank 0 with no rows has shift 0; any common shift is exact, it only affects rounding.
        common = state.shift.clone()
        dist.broadcast(common, src=0)
        s, g = state.rebased(common)
        count = torch.tensor([float(self.n)], dtype=torch.float64, device=state.device)
        packed = torch.cat([count, s, g.reshape(-1)])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        packed, common = self.ops.asarray(packed), self.ops.asarray(common)
        self.n = int(round(float(packed[0])))
        self.shift[...] = common
        self.sum[...] = packed[1:1 + self.dim]
        self.gram[...] = packed[1 + self.dim:].reshape(self.dim, self.dim)
        return self

    # -- results ---------------------------------------------------------------------------
    def mean(self) -> np.ndarray:
        """Mean of the rows, float64. Shape: (d,)."""
        return to_numpy(self.shift + self.sum / self.n)

    def scatter(self, *, center: bool) -> np.ndarray:
        """sum (x - x_bar)(x - x_bar)^T if center, else sum x x^T; float64 numpy. Shape: (d, d)."""
        if center:
            g = self.gram - self.ops.outer(self.sum, self.sum) / self.n
        else:
            _, g = self.rebased(self.ops.zeros(self.dim))
        g = to_numpy(g)
        g += g.T  # exact symmetry; the eigensolver reads one triangle anyway
        g *= 0.5
        return g


class DiagMoments:
    """The diagonal of `Moments`: n, shift a, s = sum (x - a), q = sum (x - a)^2. Shapes: (d,).

    Per-dimension variances at O(d) memory; float64; same backends and merge rules as `Moments`.
    """

    def __init__(self, dim: int, *, ops: ArrayOps = NUMPY):
        self.dim = int(dim)
        self.ops = ops
        self.n = 0
        self.shift, self.sum, self.sumsq = (ops.zeros(self.dim) for _ in range(3))

    def update(self, x) -> None:
        """Add rows (m, d): a numpy array or tensor (moved to the state's backend)."""
        if x.shape[0] == 0:
            return
        x, _ = self.ops.rows(x, "float64", False)
        if self.n == 0:
            self.shift[...] = self.ops.mean_rows(x)
        y = x - self.shift
        self.sum += self.ops.sum_rows(y)
        self.sumsq += self.ops.sum_rows(y * y)
        self.n += int(x.shape[0])

    def merge_(self, other: DiagMoments) -> DiagMoments:
        if other.n == 0:
            return self
        shift, s, q = (self.ops.asarray(to_numpy(a)) for a in (other.shift, other.sum,
                                                                other.sumsq))
        if self.n == 0:
            self.shift[...] = shift
        delta = shift - self.shift
        self.sumsq += q + 2 * delta * s + other.n * delta * delta
        self.sum += s + other.n * delta
        self.n += other.n
        return self

    def all_reduce_(self) -> DiagMoments:
        """Sum over all processes (see `Moments.all_reduce_`)."""
        import torch  # distributed runs only: the numpy backend must not import torch
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
        packed, common = self.ops.asarray(packed), self.ops.asarray(common)
        d = self.dim
        self.n = int(round(float(packed[0])))
        self.shift[...] = common
        self.sum[...] = packed[1:1 + d]
        self.sumsq[...] = packed[1 + d:]
        return self

    def variance(self, *, ddof: int = 0) -> np.ndarray:
        """Per-dimension variance, float64 numpy. Shape: (d,)."""
        v = to_numpy((self.sumsq - self.sum * self.sum / self.n) / (self.n - ddof))
        return np.maximum(v, 0.0)
