"""The spectrum figure (log sigma_k against k, Jing et al. 2022 Fig 2 / Fig 7b) and spectrum.json.

`plot_spectra` draws one curve or an overlay of several (e.g. SimCLR with/without projector,
as Fig 7b); `write_spectrum_report` writes a folder's spectrum.json + spectrum.png from a
`SpectrumSummary` (what `SpectrumAccumulator.summary()` returns), so every command that
measures a spectrum (an embeddings file, a run folder, a checkpoint) writes the same files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dimcollapse.figures import (
    SPECTRUM_XLABEL,
    SPECTRUM_YLABEL,
    line_styles,
    mark_floor,
    mark_zeros,
    numerical_floor,
    pyplot,
    save_figure,
)
from dimcollapse.runinfo import write_json
from dimcollapse.spectrum.summary import SpectrumSummary

YLABEL = SPECTRUM_YLABEL
COLLAPSE_REL_THRESHOLD = 1e-4  # spectrum.metrics' default: collapsed = sigma_k < 1e-4 sigma_1


def spectrum_figure(curves: Mapping[str, np.ndarray], *, title: str | None = None,
                    ylabel: str = YLABEL, xlabel: str = SPECTRUM_XLABEL,
                    threshold: float | None = COLLAPSE_REL_THRESHOLD,
                    normalize_max: bool = False, precision: str = "float64",
                    relative_index: bool = False):
    """The figure of `plot_spectra` (returned, not saved: tests read its lines and legend)."""
    plt = pyplot()
    if not curves:
        raise ValueError("plot_spectra needs at least one curve")
    fig, ax = plt.subplots(figsize=(7.4, 4.6), dpi=120)
    draw_spectra(ax, curves, title=title, ylabel=ylabel, xlabel=xlabel, threshold=threshold,
                 normalize_max=normalize_max, precision=precision, relative_index=relative_index)
    return fig


def draw_spectra(ax, curves: Mapping[str, np.ndarray], *, title: str | None = None,
                 ylabel: str = YLABEL, xlabel: str = SPECTRUM_XLABEL,
                 threshold: float | None = COLLAPSE_REL_THRESHOLD,
                 normalize_max: bool = False, precision: str = "float64",
                 relative_index: bool = False):
    """Draw the spectra onto a matplotlib Axes; returns ax. Shared by `plot_spectra` (a PNG
    file) and `dimcollapse.Spectrum.plot` (the caller's axes).

    Every curve gets its own colour/line style; its legend entry counts the eigenvalues below
    the threshold. The threshold (threshold x sigma_1) is a dotted line in the curve's colour,
    labelled in the legend (one grey line when the curves share sigma_1 = 1). Exact zeros are
    'x' marks on the bottom edge. The numerical floor of `precision` (see
    `figures.numerical_floor`) is drawn or, when far below the data, named in the legend.
    relative_index: the x-axis is k / d (each curve's own d), so that spectra of layers of
    different widths overlay (`dimcollapse spectrum MODEL --layers`).
    """
    if not curves:
        raise ValueError("draw_spectra needs at least one curve")
    styles = line_styles(len(curves))
    shared = normalize_max or len(curves) == 1
    per_curve_entries = len(curves) <= 4  # more: one legend line explains the dotted lines
    tops, lows, dim = [], [], 1
    for (label, values), (color, ls) in zip(curves.items(), styles, strict=True):
        ev = np.sort(np.asarray(values, dtype=np.float64).ravel())[::-1]
        top = ev[0] if ev.size and ev[0] > 0 else 1.0
        if normalize_max:
            ev = ev / top
            top = 1.0
        dim = max(dim, ev.size)
        k = np.arange(1, ev.size + 1) / (ev.size if relative_index else 1)
        positive = ev > 0
        zeros = k[~positive]
        text = str(label)
        if threshold is not None:
            text += f": {int(np.count_nonzero(ev < threshold * top))} of {ev.size} below threshold"
        if zeros.size:
            text += f", {zeros.size} exact zeros (x)"
        ax.plot(k[positive], ev[positive], color=color, ls=ls, lw=1.6, label=text)
        mark_zeros(ax, zeros, color=color)
        if threshold is not None and not shared:
            ax.axhline(threshold * top, color=color, ls=":", lw=1.0,
                       label=(f"collapse threshold {threshold:g}" + r"$\,\sigma_1$"
                              + f" of {label}") if per_curve_entries else "_nolegend_")
        tops.append(top)
        if positive.any():
            lows.append(float(ev[positive].min()))
    if threshold is not None and not shared and not per_curve_entries:
        ax.plot([], [], color="0.3", ls=":", lw=1.0,
                label=f"dotted, in each curve's colour: its collapse threshold {threshold:g}"
                + r"$\,\sigma_1$")
    if threshold is not None and shared:
        ax.axhline(threshold * tops[0], color="0.45", ls=":", lw=1.2,
                   label=f"collapse threshold: {threshold:g}" + r"$\,\sigma_1$")
    mark_floor(ax, numerical_floor(max(tops), dim, precision), min(lows) if lows else None,
               precision=precision)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(("normalised (÷ σ_1) " if normalize_max else "") + ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return ax


def plot_spectra(curves: Mapping[str, np.ndarray], path: str | os.PathLike, *,
                 title: str | None = None, ylabel: str = YLABEL,
                 xlabel: str = SPECTRUM_XLABEL,
                 threshold: float | None = COLLAPSE_REL_THRESHOLD, normalize_max: bool = False,
                 precision: str = "float64", relative_index: bool = False) -> Path:
    """Plot each spectrum as sigma_k (sorted descending) against k on a log y-axis; save a PNG.

    curves: label -> eigenvalues (any order; sorted here). threshold: the collapse threshold
    relative to each curve's sigma_1 (None: not drawn). normalize_max: divide each curve by its
    largest value (to overlay different scales). precision: of the eigenvalue computation, for
    the numerical floor. Returns the path written. Uses the Agg backend (no display needed).
    """
    fig = spectrum_figure(curves, title=title, ylabel=ylabel, xlabel=xlabel,
                          threshold=threshold, normalize_max=normalize_max, precision=precision,
                          relative_index=relative_index)
    return save_figure(fig, path, bbox_inches="tight")


def replot_spectrum_folder(folder: str | os.PathLike, *, title: str | None = None) -> Path:
    """Redraw folder/spectrum.png from folder/spectrum.json alone (no features, no model)."""
    summary = json.loads((Path(folder) / "spectrum.json").read_text())
    return write_spectrum_png(summary, folder, title=title or summary.get("figure_title"))


def write_spectrum_png(summary: Mapping, out_dir: str | os.PathLike, *,
                       title: str | None = None, label: str | None = None) -> Path:
    """out_dir/spectrum.png of a spectrum.json dict (`SpectrumAccumulator.summary()` keys)."""
    if label is None:
        label = (f"N={summary['n']}, d={summary['dim']}, "
                 f"{'L2-normalised' if summary['normalize'] else 'raw'}")
    return plot_spectra({label: np.asarray(summary["eigenvalues"])}, Path(out_dir) /
                        "spectrum.png", title=title,
                        threshold=summary.get("threshold", COLLAPSE_REL_THRESHOLD),
                        precision=summary.get("precision", "float64"))


def write_spectrum_report(summary: SpectrumSummary, out_dir: str | os.PathLike, *,
                          metadata: Mapping | None = None, title: str | None = None,
                          label: str | None = None) -> tuple[Path, Path]:
    """Write out_dir/spectrum.json (summary + metadata) and out_dir/spectrum.png.

    summary: what `SpectrumAccumulator.summary()` returns, usually `with_source(...)`.
    metadata: provenance, usually `dimcollapse.runinfo.run_metadata()`. title: of the figure,
    also stored in the JSON (`figure_title`) so that `replot_spectrum_folder` redraws it as is.
    Returns (json_path, png_path).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = summary.to_dict()
    if title is not None:
        record["figure_title"] = title
    if metadata is not None:
        record["metadata"] = dict(metadata)
    json_path = out / "spectrum.json"
    write_json(json_path, record)
    png_path = write_spectrum_png(record, out, title=title, label=label)
    return json_path, png_path
