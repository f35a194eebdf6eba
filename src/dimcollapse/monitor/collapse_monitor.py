"""`CollapseMonitor`: streaming collapse metrics of any model's tensors, live, DDP-aware.

    monitor = CollapseMonitor(metrics=("rankme", "collapsed_dims"), every=1, window=None)
    monitor.watch(model, {"r": "backbone.avgpool", "z": "projector"})   # forward hooks
    monitor.update("h", h)                                              # or feed tensors
    monitor.compute()   # {"r": {"rankme": ..., "collapsed_dims": ...}, "z": {...}, "h": {...}}

Per watched name one `SpectrumAccumulator` (O(d^2) memory, float64 sums) pools the rows; the
metrics are `measure`'s (`Spectrum`), so the training loop, `dimcollapse spectrum` and this
monitor share one code path.

Schedule, per name (counted separately, so a name fed once per step counts steps):
- ``every=k``: only the k-th, 2k-th, ... update is recorded; the others return at once.
- ``window=None``: `compute()` covers every recorded update since the last `reset()`.
- ``window=w``: recorded updates are pooled in consecutive windows of w; `compute()` returns,
  per name, the metrics of the last complete window (names with none yet are absent), and
  `ready()` says that a window completed since the last `compute()`.

Watching never changes training: outputs are detached, nothing is written into them, no RNG is
drawn, and nothing synchronises ranks except `compute()`, which (under torch.distributed) sums
a copy of each state over all ranks, so every rank gets the metrics of the global batch; all
ranks must call it together, as any collective.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dimcollapse.errors import UserError
from dimcollapse.monitor import watch as watching
from dimcollapse.monitor.blas import one_blas_thread
from dimcollapse.spectrum.accumulator import RAW_MAX_SAMPLES, SpectrumAccumulator
from dimcollapse.spectrum.backend import PRECISIONS
from dimcollapse.spectrum.measure import METRICS, Spectrum
from dimcollapse.spectrum.metrics import COLLAPSE_REL_THRESHOLD

DEFAULT_METRICS = ("rankme", "alpha_req", "collapsed_dims", "normalized_std")
SAMPLES = "n"  # always in compute()'s result: the rows (over all ranks) behind the metrics
RAW_METRICS = frozenset({"rankme", "alpha_req", "alpha_req_r2"})  # need the raw-row Gram


@dataclass
class _Stream:
    """One name's state: the open window's accumulator and the last complete one."""

    updates: int = 0  # updates received (recorded or skipped by `every`)
    recorded: int = 0  # recorded into the open window
    open: SpectrumAccumulator | None = None
    done: SpectrumAccumulator | None = None
    fresh: bool = False  # a window completed since the last compute()
    dim: int | None = None
    hooks: list[Any] = field(default_factory=list)


class CollapseMonitor:
    """Collapse metrics (RankMe, alpha-ReQ, collapsed dims, ...) of named (N, d) streams.

    Args:
        metrics: names of `Spectrum` metrics to report (dimcollapse.spectrum.measure.METRICS);
            the sample count "n" is always added. Default: DEFAULT_METRICS.
        every: record every k-th update of each name (k >= 1).
        window: recorded updates pooled per result (see the module docstring); None: all.
        normalize, center: as in `measure` (the paper: L2-normalised rows, centred).
        threshold: collapsed-dimension threshold, relative to the largest eigenvalue.
        precision: "float64" (exact) or "float32" products (summed in float64; ~2x faster on
            CPU, error ~1e-7 of the largest eigenvalue).
        device: where the states live; None: each name's first batch's device.
        raw_max_samples: rows per window behind RankMe / alpha-ReQ (Garrido et al.: 25,600).
    """

    def __init__(self, metrics: Iterable[str] | None = None, *, every: int = 1,
                 window: int | None = None, normalize: bool = True, center: bool = True,
                 threshold: float = COLLAPSE_REL_THRESHOLD, precision: str = "float64",
                 device: Any = None, raw_max_samples: int | None = RAW_MAX_SAMPLES):
        chosen = tuple(DEFAULT_METRICS if metrics is None else
                       ([metrics] if isinstance(metrics, str) else metrics))
        unknown = [m for m in chosen if m not in METRICS and m != SAMPLES]
        if unknown or not chosen:
            raise UserError(f"CollapseMonitor: unknown metric(s) {unknown or '(none given)'}; "
                            f"choose from {', '.join(METRICS)}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise UserError(f"CollapseMonitor: every={every!r}; pass an integer >= 1 "
                            "(1 records every update)")
        if window is not None and (not isinstance(window, int) or isinstance(window, bool)
                                   or window < 1):
            raise UserError(f"CollapseMonitor: window={window!r}; pass an integer >= 1 "
                            "(updates pooled per result) or None (pool until reset)")
        if precision not in PRECISIONS:
            raise UserError(f"CollapseMonitor: precision={precision!r}; pass one of "
                            f"{', '.join(PRECISIONS)}")
        self.metrics = tuple(dict.fromkeys((*[m for m in chosen if m != SAMPLES], SAMPLES)))
        self.every, self.window = every, window
        self.normalize, self.center = bool(normalize), bool(center)
        self.threshold, self.precision, self.device = threshold, precision, device
        # RankMe / alpha-ReQ need a second d x d Gram: keep it only when asked for.
        self.raw_max_samples = raw_max_samples if RAW_METRICS & set(self.metrics) else 0
        self._streams: dict[str, _Stream] = {}

    # -- feeding -----------------------------------------------------------------------------
    def update(self, name: str, x: Any) -> None:
        """Add a batch for `name`. x: (N, d) tensor/array, an (N, C, *spatial) feature map
        (averaged over the spatial dims) or a tuple whose first tensor is one. Detached."""
        stream = self._streams.get(name)
        if stream is None:
            if not isinstance(name, str) or not name:
                raise UserError(f"monitor.update(): the name must be a non-empty string, "
                                f"got {name!r}")
            stream = self._streams[name] = _Stream()
        stream.updates += 1
        if stream.updates % self.every:
            return  # not recorded: no work at all
        rows = watching.as_rows(name, x)
        dim = int(rows.shape[1])
        if stream.dim is None:
            stream.dim = dim
        elif dim != stream.dim:
            raise UserError(f"monitor {name!r}: got rows of dimension {dim} after {stream.dim}; "
                            "feed one tensor per name, or reset() first")
        if stream.open is None:
            stream.open = self._accumulator(dim)
        with one_blas_thread():
            stream.open.update(rows)
        stream.recorded += 1
        if self.window is not None and stream.recorded == self.window:
            stream.done, stream.open, stream.recorded, stream.fresh = stream.open, None, 0, True

    def watch(self, model: Any, targets: Mapping[str, str]) -> CollapseMonitor:
        """Record module outputs by forward hooks. targets: {monitor name: module name in
        model.named_modules()}, e.g. {"r": "backbone.avgpool", "z": "projector"}. Returns self.

        Every forward call of a watched module is one update of its name (eval passes too:
        `unwatch()` or use the monitor as a context manager around training only).
        """
        targets = watching.watch_targets(targets)
        modules = {key: watching.find_module(model, path) for key, path in targets.items()}
        for key in modules:
            if self._streams.get(key) is not None and self._streams[key].hooks:
                raise UserError(f"watch(): {key!r} is already watched; pick another name or "
                                "unwatch() first")
        for key, module in modules.items():
            def feed(out: Any, key: str = key) -> None:
                self.update(key, out)

            handle = watching.add_output_hook(module, feed)
            self._streams.setdefault(key, _Stream()).hooks.append(handle)
        return self

    def unwatch(self) -> None:
        """Remove every forward hook this monitor added (the data pooled so far stays)."""
        for stream in self._streams.values():
            for handle in stream.hooks:
                handle.remove()
            stream.hooks.clear()

    def __enter__(self) -> CollapseMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.unwatch()

    # -- results -----------------------------------------------------------------------------
    def ready(self) -> bool:
        """True when a window completed since the last compute() (always True, given data, for
        window=None)."""
        if self.window is None:
            return any(s.open is not None for s in self._streams.values())
        return any(s.fresh for s in self._streams.values())

    def spectra(self) -> dict[str, Spectrum]:
        """The full `Spectrum` per name (all ranks pooled; see compute()). A collective."""
        names = sorted(n for n, s in self._streams.items()
                       if (s.open if self.window is None else s.done) is not None)
        _check_same_names_on_all_ranks(names)
        out: dict[str, Spectrum] = {}
        for name in names:
            stream = self._streams[name]
            source = stream.open if self.window is None else stream.done
            # names holds the streams with data: an accumulator, and the dim it was made for
            assert source is not None and source._ops is not None and stream.dim is not None
            pooled = self._accumulator(stream.dim, device=source._ops.device_name)
            pooled.merge_(source)  # a copy: the sums of later compute() calls stay this rank's
            pooled.all_reduce_()
            if pooled.n < 2:
                raise UserError(f"monitor {name!r} has {pooled.n} row; the metrics need at "
                                "least 2: feed bigger batches or pool more updates (window=)")
            stream.fresh = False
            out[name] = Spectrum.from_summary(pooled.summary(rel_threshold=self.threshold))
        return {name: out[name] for name in self._streams if name in out}

    def compute(self) -> dict[str, dict[str, Any]]:
        """{name: {metric: value}} over the pooled rows of every name with data (module
        docstring). Under torch.distributed every rank must call it; all get the same numbers."""
        return {name: {m: getattr(s, m) for m in self.metrics}
                for name, s in self.spectra().items()}

    def reset(self) -> None:
        """Forget the pooled rows and the counters (hooks stay)."""
        for stream in self._streams.values():
            stream.updates = stream.recorded = 0
            stream.open = stream.done = stream.dim = None
            stream.fresh = False

    def _accumulator(self, dim: int, device: Any = None) -> SpectrumAccumulator:
        return SpectrumAccumulator(dim, normalize=self.normalize, center=self.center,
                                   device=device if device is not None else self.device,
                                   precision=self.precision,
                                   raw_max_samples=self.raw_max_samples)


def _check_same_names_on_all_ranks(names: list[str]) -> None:
    """Under torch.distributed, raise on every rank unless all ranks pooled the same names
    (a rank missing one would otherwise wait forever in that name's all-reduce)."""
    if "torch" not in sys.modules:
        return  # no torch, no process group
    import torch.distributed as dist  # torch: only when torch is loaded (numpy inputs: no torch)

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, names)
    if any(g != names for g in gathered):
        raise UserError(f"CollapseMonitor.compute(): the ranks pooled different names "
                        f"{gathered}; feed every name on every rank before compute()")
