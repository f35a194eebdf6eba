"""Streaming embedding spectrum with O(d^2) memory (Jing et al. 2022, Eqn 1) and collapse metrics.

`SpectrumAccumulator` takes batches of embeddings (numpy or torch, CPU or CUDA), keeps
sum-reducible float64 moments on the batches' device, and gives the same eigenvalues as
`covariance_spectrum` on all rows at once (to ~1e-12 of the largest in float64). States merge
(`merge_`) and all-reduce across processes (`all_reduce_`), so each DDP rank can measure its
shard. `summary()` returns the spectrum with RankMe, alpha-ReQ, collapsed dimensions and the
std of normalised embeddings: what the training loop logs every few steps and what
`dimcollapse spectrum` writes to spectrum.json.

What is measured from which rows:
- the spectrum (Eqn 1) and collapsed dims: all rows, L2-normalised if ``normalize``, centred if
  ``center``, divided by N - ddof;
- RankMe and alpha-ReQ: as their authors define them, on the *raw* rows (never normalised):
  RankMe on the uncentred raw matrix, alpha-ReQ on the centred raw features. Their statistics
  (an extra d x d uncentred Gram, always float64) cover the first ``raw_max_samples`` rows
  (default 25,600, the number Garrido et al. use for RankMe; None: all rows; 0: skip both);
- std of normalised rows: all rows.
"""

from __future__ import annotations

import numpy as np

from dimcollapse.spectrum import metrics
from dimcollapse.spectrum.backend import BACKENDS, PRECISIONS, ArrayOps, ops_for
from dimcollapse.spectrum.covariance import clip_psd, eigvalsh_descending, is_tensor
from dimcollapse.spectrum.moments import DiagMoments, Moments
from dimcollapse.spectrum.summary import SpectrumSummary, summarize

RAW_MAX_SAMPLES = 25_600


class SpectrumAccumulator:
    """Covariance spectrum of a stream of (n, dim) batches, plus collapse metrics.

    Args:
        dim: embedding dimension d.
        normalize: L2-normalise each row before the spectrum (official image code: True).
        center: subtract the mean (Eqn 1: True); False gives the uncentred second moment.
        device: where the state lives; None: the device of the first batch (CPU for numpy
            arrays). Later batches on another device are moved to it. On the CPU the state is
            numpy (BLAS syrk, no torch import); on a CUDA device it is torch tensors.
        precision: dtype of the per-batch products Y^T Y: "float64" (default, exact to
            rounding) or "float32" (about 2x faster on CPU; the products are summed in float64,
            error ~1e-7 of the largest eigenvalue, see docs/spectrum.md).
        raw_max_samples: rows (the first ones seen, per accumulator) whose raw statistics feed
            RankMe and alpha-ReQ; None: all; 0: don't compute them.
        backend: None picks numpy on the CPU and torch elsewhere; "torch" forces torch ops on
            the CPU too (a full GEMM per batch: slower; tests use it to check the CUDA path).

    Memory: two d x d float64 matrices (one without RankMe/alpha-ReQ) plus one batch.
    """

    def __init__(self, dim: int, *, normalize: bool, center: bool = True, device=None,
                 precision: str = "float64", raw_max_samples: int | None = RAW_MAX_SAMPLES,
                 backend: str | None = None):
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if raw_max_samples is not None and raw_max_samples < 0:
            raise ValueError(f"raw_max_samples must be >= 0 or None, got {raw_max_samples}")
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend must be None or one of {tuple(BACKENDS)}, "
                             f"got {backend!r}")
        self.dim = int(dim)
        self.normalize = bool(normalize)
        self.center = bool(center)
        self.precision = precision
        self.raw_max_samples = raw_max_samples
        self._backend_request = backend
        self._ops: ArrayOps | None = None  # chosen with the first batch's device
        self._main: Moments | None = None
        self._raw: Moments | None = None
        self._unit: DiagMoments | None = None  # std of normalised rows when normalize=False
        if device is not None:
            self._init_state(str(device))

    # -- state -----------------------------------------------------------------------------
    def _init_state(self, device: str) -> None:
        backend = self._backend_request or ("numpy" if device == "cpu" else "torch")
        ops = self._ops = ops_for(backend, device)
        self._main = Moments(self.dim, precision=self.precision, ops=ops)
        if self.raw_max_samples != 0:
            self._raw = Moments(self.dim, precision="float64", shifted=False, ops=ops)
        if not self.normalize:
            self._unit = DiagMoments(self.dim, ops=ops)

    @property
    def n(self) -> int:
        """Rows accumulated so far."""
        return 0 if self._main is None else self._main.n

    @property
    def raw_n(self) -> int:
        """Rows behind RankMe and alpha-ReQ."""
        return 0 if self._raw is None else self._raw.n

    @property
    def device(self):
        """The state's torch device (torch backend), None for the numpy backend."""
        return None if self._ops is None else self._ops.device

    def _config(self) -> tuple:
        return (self.dim, self.normalize, self.center, self.precision, self.raw_max_samples)

    # -- updates ---------------------------------------------------------------------------
    def update(self, batch) -> None:
        """Add a batch of rows. batch: (n, dim), numpy array or torch tensor, any real dtype."""
        if is_tensor(batch):
            batch = batch.detach()
            if self._ops is None:
                self._init_state(str(batch.device))
        else:
            batch = np.asarray(batch)
            if self._ops is None:
                self._init_state("cpu")
        if batch.ndim != 2 or batch.shape[1] != self.dim:
            raise ValueError(f"expected a batch of shape (n, {self.dim}), got {tuple(batch.shape)}")
        if batch.shape[0] == 0:
            return
        ops = self._ops
        assert ops is not None and self._main is not None  # set by _init_state above
        x = ops.from_batch(batch)
        if self._raw is not None:
            room = batch.shape[0] if self.raw_max_samples is None else \
                max(0, self.raw_max_samples - self._raw.n)
            if room:
                self._raw.update(x[:room])
        if self._unit is not None:
            self._unit.update(ops.normalize_rows_(ops.work_copy(x, "float64")))
        w = ops.work_copy(x, self.precision)
        if self.normalize:
            ops.normalize_rows_(w)
        self._main.update(w, owned=True)

    def merge_(self, other: SpectrumAccumulator) -> SpectrumAccumulator:
        """Add another accumulator's rows into this one (same settings). Returns self.

        The raw-row limit applies per accumulator: after merging, RankMe and alpha-ReQ use each
        part's first raw_max_samples rows.
        """
        if other._config() != self._config():
            raise ValueError(f"cannot merge accumulators with different settings: "
                             f"{other._config()} vs {self._config()}")
        if other._main is None:
            return self
        assert other._ops is not None  # set with other._main
        if self._main is None:
            self._backend_request = self._backend_request or other._ops.name
            self._init_state(other._ops.device_name)
        assert self._main is not None
        self._main.merge_(other._main)
        if self._raw is not None:
            assert other._raw is not None  # same settings: both track the same parts
            self._raw.merge_(other._raw)
        if self._unit is not None:
            assert other._unit is not None
            self._unit.merge_(other._unit)
        return self

    def all_reduce_(self) -> SpectrumAccumulator:
        """Sum the state over all processes of torch.distributed's default group (in place).

        Every rank must call it. A no-op without an initialised process group. Ranks that saw no
        rows must still have a device: pass ``device=`` to the constructor.
        """
        # torch: distributed runs only; the numpy backend must not import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        if self._main is None:
            raise RuntimeError("all_reduce_ before any update: pass device= to the constructor")
        self._main.all_reduce_()
        if self._raw is not None:
            self._raw.all_reduce_()
        if self._unit is not None:
            self._unit.all_reduce_()
        return self

    # -- results ---------------------------------------------------------------------------
    def _require(self, rows: int) -> None:
        if self.n < rows:
            raise ValueError(f"need at least {rows} rows, have {self.n}")

    def covariance(self, ddof: int = 0) -> np.ndarray:
        """C = scatter / (n - ddof), float64 numpy (Eqn 1). Shape: (dim, dim)."""
        self._require(max(1, ddof + 1))
        assert self._main is not None  # rows were seen
        return self._main.scatter(center=self.center) / (self.n - ddof)

    def eigenvalues(self, ddof: int = 0) -> np.ndarray:
        """Eigenvalues of the covariance, float64, descending, rounding negatives set to 0."""
        return clip_psd(eigvalsh_descending(self.covariance(ddof)))

    def raw_singular_values(self) -> np.ndarray | None:
        """Singular values of the raw uncentred matrix of the first raw_n rows, descending.

        sqrt of the eigenvalues of the uncentred Gram Z^T Z; only the top min(raw_n, d) exist.
        """
        if self._raw is None or self._raw.n == 0:
            return None
        ev = clip_psd(eigvalsh_descending(self._raw.scatter(center=False)))
        return np.sqrt(ev[:min(self._raw.n, self.dim)])

    def rankme(self, *, eps: float = metrics.RANKME_EPS) -> float | None:
        """RankMe (Garrido et al. 2023) of the raw rows; None when not tracked or all zero."""
        s = self.raw_singular_values()
        if s is None or not s.sum() > 0:
            return None
        return metrics.rankme_from_singular_values(s, eps=eps)

    def alpha_req(self) -> metrics.AlphaReQ | None:
        """alpha-ReQ (Agrawal et al. 2022) of the centred raw rows; None when not tracked."""
        if self._raw is None or self._raw.n < 2:
            return None
        ev = clip_psd(eigvalsh_descending(self._raw.scatter(center=True) / self._raw.n))
        return metrics.alpha_req(ev)

    def normalized_std(self, ddof: int = 0) -> np.ndarray:
        """Per-dimension std of the L2-normalised rows (SimSiam). Shape: (dim,)."""
        self._require(max(1, ddof + 1))
        if self._unit is not None:
            return np.sqrt(self._unit.variance(ddof=ddof))
        assert self._main is not None  # rows were seen
        var = np.diag(self._main.scatter(center=True)) / (self.n - ddof)
        return np.sqrt(np.maximum(var, 0.0))

    def summary(self, *, ddof: int = 0,
                rel_threshold: float = metrics.COLLAPSE_REL_THRESHOLD) -> SpectrumSummary:
        """Everything measured, as a typed record (`to_dict()`: the keys of docs/spectrum.md).

        Cost: one d x d symmetric eigensolve for the spectrum and two for RankMe/alpha-ReQ
        (skip those with raw_max_samples=0); no pass over the data.
        """
        self._require(max(2, ddof + 1))
        return summarize(self, ddof=ddof, rel_threshold=rel_threshold)
