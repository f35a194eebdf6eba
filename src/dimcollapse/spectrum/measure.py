"""`measure(z) -> Spectrum`: the public one-call spectrum of an (N, d) matrix, and `Spectrum`.

`measure` runs the same code path as `dimcollapse spectrum` and the training monitor: one
`SpectrumAccumulator` (float64 products, whatever the input dtype) and its `summary()`; the
`Spectrum` it returns is that `SpectrumSummary` with the metrics lifted into attributes, its
`to_dict()` is spectrum.json's keys, and `plot()` draws Fig 2 of Jing et al. (ICLR 2022).

To add a metric to `Spectrum` (and so to `CollapseMonitor(metrics=...)`): declare one field
`= field(metadata=METRIC)` in the marked place below. Its value is the `SpectrumSummary` field
of the same name, or `DERIVED[name](summary)` when it is computed from the summary here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dimcollapse.errors import UserError
from dimcollapse.spectrum.accumulator import RAW_MAX_SAMPLES, SpectrumAccumulator
from dimcollapse.spectrum.covariance import is_tensor
from dimcollapse.spectrum.metrics import COLLAPSE_REL_THRESHOLD, AlphaReQ
from dimcollapse.spectrum.summary import SpectrumSummary
from dimcollapse.spectrum.verdict import Verdict

# The metadata of a `Spectrum` field that is a scalar collapse metric (selectable in
# CollapseMonitor). Spelled `field(metadata=METRIC)` at each field, not via a helper, so that
# type checkers see fields without a default.
METRIC = {"metric": True}


@dataclass(frozen=True)
class Spectrum:
    """The covariance spectrum (Jing et al. 2022, Eqn 1) of N rows of dimension d, and metrics.

    eigenvalues: (d,) float64, descending, >= 0 (a read-only array) of
        C = sum_i (z_i - z_bar)(z_i - z_bar)^T / N over the (L2-normalised if `normalize`) rows.
    rankme: RankMe (Garrido et al., ICML 2023) of the raw uncentred rows (first 25,600).
    alpha_req, alpha_req_r2: alpha-ReQ decay exponent and its fit's R^2 (Agrawal et al.,
        NeurIPS 2022), on the centred raw rows; None when d < 13 (fewer than 3 ranks in 11..100).
    collapsed_dims: eigenvalues below `threshold` x the largest (Jing et al. 2022, Fig 2).
    normalized_std: mean over the d dimensions of the std of the L2-normalised rows (Chen & He,
        SimSiam, CVPR 2021, Fig 2); ~ 1/sqrt(d) when healthy, -> 0 under collapse.
    effective_rank: effective rank (Roy & Vetterli, EUSIPCO 2007) of the covariance C, i.e.
        exp of the entropy of eigenvalues / their sum; in [1, rank C]; None when C = 0.
    nesum: sum_k lambda_k / lambda_1 (He & Ozay, ICML 2022, Def. 4.1); in [1, d]; None when C = 0.
    normalized_total_variance: T = trace Cov(z_i / ||z_i||) (ddof 0), in [0, 1]; ~1 spread, 0
        when all rows point one way.
    collapse: "complete" (T < 1e-4), "dimensional" (collapsed_dims > 0) or "none"
        (spectrum/verdict.py, docs/spectrum.md).
    summary: the full `SpectrumSummary` (per-dimension std, fit details, settings).
    """

    eigenvalues: np.ndarray = field(compare=False, repr=False)
    n: int
    dim: int
    normalize: bool
    center: bool
    threshold: float
    rankme: float | None = field(metadata=METRIC)
    alpha_req: float | None = field(metadata=METRIC)
    alpha_req_r2: float | None = field(metadata=METRIC)
    collapsed_dims: int = field(metadata=METRIC)
    normalized_std: float = field(metadata=METRIC)
    # -- NEW metrics go here, one `field(metadata=METRIC)` each (filled by name from the summary).
    effective_rank: float | None = field(metadata=METRIC)
    nesum: float | None = field(metadata=METRIC)
    normalized_total_variance: float = field(metadata=METRIC)
    collapse: Verdict = field(metadata=METRIC)
    # LiDAR (Thilak et al. 2024) is not a field: it needs q views per sample, not N rows
    # (`dimcollapse.lidar(views)`, `dimcollapse spectrum RUN --lidar-views Q`).
    summary: SpectrumSummary = field(repr=False)

    @classmethod
    def from_summary(cls, summary: SpectrumSummary) -> Spectrum:
        """The `Spectrum` of an accumulator's summary (what `measure` and the monitor return)."""
        ev = np.array(summary.eigenvalues, dtype=np.float64)
        ev.setflags(write=False)
        values: dict[str, Any] = {"eigenvalues": ev, "summary": summary}
        for f in dataclasses.fields(cls):
            if f.name in values:
                continue
            values[f.name] = DERIVED[f.name](summary) if f.name in DERIVED else \
                getattr(summary, f.name)
        return cls(**values)

    @property
    def alpha_req_fit(self) -> AlphaReQ | None:
        """The alpha-ReQ fit record (ranks used, R^2), None when not tracked."""
        return self.summary.alpha_req_fit

    def metrics(self) -> dict[str, Any]:
        """The scalar metrics by name (the fields `CollapseMonitor(metrics=...)` can select)."""
        return {name: getattr(self, name) for name in METRICS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with exactly the keys of spectrum.json (docs/spectrum.md), in order."""
        return self.summary.to_dict()

    def plot(self, ax=None, *, label: str | None = None, threshold: bool = True,
             normalize_max: bool = False, title: str | None = None):
        """Draw log sigma_k against k (Jing et al. 2022, Fig 2 style) on `ax`; returns the Axes.

        ax: a matplotlib Axes; None: a new figure from `matplotlib.pyplot` (your backend).
        threshold: also draw the collapse threshold (`threshold` x the largest eigenvalue).
        normalize_max: divide by the largest eigenvalue (to overlay spectra of other scales).
        Exact zeros cannot be drawn on a log axis: they are left out and counted in the legend.
        """
        from dimcollapse.report.spectrum_plot import draw_spectra  # matplotlib only here

        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.4, 4.4))
        if label is None:
            label = f"N={self.n}, d={self.dim}; {self.collapsed_dims} collapsed"
        return draw_spectra(ax, {label: self.eigenvalues}, title=title,
                            threshold=self.threshold if threshold else None,
                            normalize_max=normalize_max)


# Metrics computed here from the summary rather than copied from a field of the same name.
DERIVED: dict[str, Callable[[SpectrumSummary], Any]] = {
    "normalized_std": lambda s: s.normalized_std.mean,
}
METRICS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Spectrum)
                                 if f.metadata.get("metric"))


def _check_matrix(z) -> Any:
    """z as an (N, d) numpy array or tensor of real numbers, with N >= 2 finite rows."""
    if not is_tensor(z):
        z = np.asarray(z)
        if z.dtype.kind not in "fiu":
            raise UserError(f"measure() got an array of dtype {z.dtype}: pass real numbers")
        finite = bool(np.isfinite(z).all())
    else:
        if z.is_complex() or str(z.dtype) == "torch.bool":
            raise UserError(f"measure() got a tensor of dtype {z.dtype}: pass real numbers")
        finite = bool(z.detach().isfinite().all())
    if z.ndim != 2:
        raise UserError(f"measure() needs an (N, d) matrix, got shape {tuple(z.shape)}: "
                        "flatten or pool the other dimensions first")
    if z.shape[0] < 2 or z.shape[1] < 1:
        raise UserError(f"measure() needs at least 2 rows and 1 column, got shape "
                        f"{tuple(z.shape)}")
    if not finite:
        raise UserError("measure() got NaN or infinite values: check the embeddings (a diverged "
                        "model?) before measuring them")
    return z


def measure(z, *, normalize: bool = True, center: bool = True, ddof: int = 0,
            threshold: float = COLLAPSE_REL_THRESHOLD,
            raw_max_samples: int | None = RAW_MAX_SAMPLES) -> Spectrum:
    """The spectrum and collapse metrics of the rows of z. Shape: (N, d) -> Spectrum.

    z: a torch tensor (CPU or CUDA, any float dtype) or a numpy array; products and sums are
        float64 (a CUDA tensor is measured on its device, the eigensolve runs on the CPU).
    normalize: L2-normalise each row first (the paper's official image code; default True).
    center: subtract the mean (Eqn 1); False gives the uncentred second moment.
    ddof: divide by N - ddof (Eqn 1: 0; `np.cov`: 1).
    threshold: an eigenvalue below threshold x the largest counts as a collapsed dimension.
    raw_max_samples: rows behind RankMe and alpha-ReQ (Garrido et al. use 25,600; None: all).
    Raises UserError for a non-(N, d) input, N < 2, or NaN/inf values.
    """
    z = _check_matrix(z)
    acc = SpectrumAccumulator(int(z.shape[1]), normalize=normalize, center=center,
                              precision="float64", raw_max_samples=raw_max_samples)
    acc.update(z)
    return Spectrum.from_summary(acc.summary(ddof=ddof, rel_threshold=threshold))
