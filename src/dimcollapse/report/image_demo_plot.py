"""Representation spectra of a few runs in side-by-side panels (the demo's image section)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dimcollapse.figures import pyplot, save_figure
from dimcollapse.report.spectrum_plot import YLABEL


def side_by_side_spectra(base: str | os.PathLike, runs: list[tuple[str, str]],
                         path: str | os.PathLike) -> Path:
    """One panel per (label, run folder relative to `base`): log sigma_k of r against k, read
    from the run's spectrum_representation/spectrum.json; the panels share the y-axis."""
    plt = pyplot()

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), dpi=120,
                             sharey=True, squeeze=False)
    for ax, (label, run_dir) in zip(axes[0], runs, strict=True):
        s = json.loads((Path(base) / run_dir / "spectrum_representation" /
                        "spectrum.json").read_text())
        ev = np.sort(np.asarray(s["eigenvalues"], dtype=np.float64))[::-1]
        k = np.arange(1, ev.size + 1)
        pos = ev > 0
        ax.plot(k[pos], ev[pos], lw=1.6)
        ax.axhline(s["threshold"] * ev[0], color="gray", ls=":", lw=1.0)
        ax.set_yscale("log")
        ax.set_xlabel("rank index k")
        rankme = "n/a" if s["rankme"] is None else f"{s['rankme']:.0f}"
        ax.set_title(f"{label}\n{s['collapsed_dims']} of {s['dim']} collapsed, RankMe {rankme}",
                     fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel(YLABEL, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
