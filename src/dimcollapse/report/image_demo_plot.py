"""Representation spectra of a few runs in side-by-side panels (the demo's image section)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dimcollapse.figures import (
    SPECTRUM_XLABEL,
    SPECTRUM_YLABEL,
    mark_floor,
    mark_zeros,
    numerical_floor,
    pyplot,
    save_figure,
)


def side_by_side_spectra(base: str | os.PathLike, runs: list[tuple[str, str]],
                         path: str | os.PathLike) -> Path:
    """One panel per (label, run folder relative to `base`): log sigma_k of r against k, read
    from the run's spectrum_representation/spectrum.json (so it redraws from the JSON alone);
    the panels share the y-axis. Each panel draws its collapse threshold and the numerical
    floor of the precision the spectrum was computed in, labelled in its legend, and marks
    exact-zero eigenvalues with 'x' on the bottom edge."""
    plt = pyplot()

    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 4.4), dpi=120,
                             sharey=True, squeeze=False)
    for ax, (label, run_dir) in zip(axes[0], runs, strict=True):
        s = json.loads((Path(base) / run_dir / "spectrum_representation" /
                        "spectrum.json").read_text())
        ev = np.sort(np.asarray(s["eigenvalues"], dtype=np.float64))[::-1]
        k = np.arange(1, ev.size + 1)
        pos = ev > 0
        ax.plot(k[pos], ev[pos], lw=1.6, color="C0", label=r"$\sigma_k$ of r")
        mark_zeros(ax, k[~pos], color="C0", label=f"{int((~pos).sum())} exact zeros"
                   if (~pos).any() else None)
        ax.axhline(s["threshold"] * ev[0], color="0.45", ls=":", lw=1.2,
                   label=f"collapse threshold {s['threshold']:g}" + r"$\,\sigma_1$")
        precision = s.get("precision", "float64")
        mark_floor(ax, numerical_floor(ev[0], ev.size, precision),
                   float(ev[pos].min()) if pos.any() else None, precision=precision)
        ax.set_yscale("log")
        ax.set_xlabel(SPECTRUM_XLABEL, fontsize=8)
        rankme = "n/a" if s["rankme"] is None else f"{s['rankme']:.0f}"
        ax.set_title(f"{label}\n{s['collapsed_dims']} of {s['dim']} collapsed, RankMe {rankme}",
                     fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper right")
    axes[0][0].set_ylabel(SPECTRUM_YLABEL, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
