"""The spectrum figure (log sigma_k against k, Jing et al. 2022 Fig 2 / Fig 7b) and spectrum.json.

`plot_spectra` draws one curve or an overlay of several (e.g. SimCLR with/without projector,
as Fig 7b); `write_spectrum_report` writes a folder's spectrum.json + spectrum.png from a
`SpectrumSummary` (what `SpectrumAccumulator.summary()` returns), so every command that
measures a spectrum (an embeddings file, a run folder, a checkpoint) writes the same files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dimcollapse.figures import pyplot, save_figure
from dimcollapse.runinfo import write_json
from dimcollapse.spectrum.summary import SpectrumSummary

YLABEL = r"eigenvalue $\sigma_k$ of the covariance (log scale)"


def plot_spectra(curves: Mapping[str, np.ndarray], path: str | os.PathLike, *,
                 title: str | None = None, ylabel: str = YLABEL,
                 xlabel: str = "singular value rank index k",
                 threshold: float | None = None, normalize_max: bool = False) -> Path:
    """Plot each spectrum as sigma_k (sorted descending) against k on a log y-axis; save a PNG.

    curves: label -> eigenvalues (any order; sorted here). Eigenvalues that are exactly 0 cannot
        be drawn on a log axis: they are left out and counted in the legend.
    threshold: draw the collapse threshold at threshold x (largest eigenvalue) of each curve.
    normalize_max: divide each curve by its largest value (to overlay different scales).
    Returns the path written. Uses the Agg backend (no display needed).
    """
    plt = pyplot()

    if not curves:
        raise ValueError("plot_spectra needs at least one curve")
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    draw_spectra(ax, curves, title=title, ylabel=ylabel, xlabel=xlabel, threshold=threshold,
                 normalize_max=normalize_max)
    fig.tight_layout()
    return save_figure(fig, path)


def draw_spectra(ax, curves: Mapping[str, np.ndarray], *, title: str | None = None,
                 ylabel: str = YLABEL, xlabel: str = "singular value rank index k",
                 threshold: float | None = None, normalize_max: bool = False):
    """Draw `plot_spectra`'s figure onto a matplotlib Axes (one line per curve); returns ax.

    Shared by `plot_spectra` (a PNG file) and `dimcollapse.Spectrum.plot` (the caller's axes).
    """
    if not curves:
        raise ValueError("draw_spectra needs at least one curve")
    for label, values in curves.items():
        ev = np.sort(np.asarray(values, dtype=np.float64).ravel())[::-1]
        top = ev[0] if ev.size and ev[0] > 0 else 1.0
        if normalize_max:
            ev = ev / top
            top = 1.0
        k = np.arange(1, ev.size + 1)
        positive = ev > 0
        zeros = int(ev.size - positive.sum())
        text = str(label) + (f" ({zeros} exact zeros not drawn)" if zeros else "")
        (line,) = ax.plot(k[positive], ev[positive], lw=1.6, label=text)
        if threshold is not None:
            ax.axhline(threshold * top, color=line.get_color(), ls=":", lw=1.0)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(("normalised " if normalize_max else "") + ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if threshold is not None:
        ax.plot([], [], color="gray", ls=":", label=f"collapse threshold ({threshold:g} x max)")
    ax.legend(fontsize=8, loc="lower left")
    return ax


def write_spectrum_report(summary: SpectrumSummary, out_dir: str | os.PathLike, *,
                          metadata: Mapping | None = None, title: str | None = None,
                          label: str | None = None) -> tuple[Path, Path]:
    """Write out_dir/spectrum.json (summary + metadata) and out_dir/spectrum.png.

    summary: what `SpectrumAccumulator.summary()` returns, usually `with_source(...)`.
    metadata: provenance, usually `dimcollapse.runinfo.run_metadata()`.
    Returns (json_path, png_path).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = summary.to_dict()
    if metadata is not None:
        record["metadata"] = dict(metadata)
    json_path = out / "spectrum.json"
    write_json(json_path, record)
    if label is None:
        label = (f"N={summary.n}, d={summary.dim}, "
                 f"{'L2-normalised' if summary.normalize else 'raw'}; "
                 f"{summary.collapsed_dims} collapsed")
    png_path = plot_spectra({label: np.asarray(summary.eigenvalues)}, out / "spectrum.png",
                            title=title, threshold=summary.threshold)
    return json_path, png_path
