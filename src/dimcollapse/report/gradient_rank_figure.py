"""The Fig 10 figure from gradient_rank.json: log sigma_k of ∂L/∂r and ∂L/∂h, one panel per arm.

Reads only the JSON dict (`explain.run_gradients` writes it), so it can be redrawn from disk.
Singular values that are exactly zero (DirectCLR's last D - d0 columns of ∂L/∂r give
min(2N, D) - d0 of them) cannot be drawn on a log axis: an 'x' on the bottom edge marks each.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from dimcollapse.figures import integer_ticks, mark_zeros, pyplot, save_figure


def _curve(ax, sv, *, color: str, ls: str, label: str | None, lw: float = 1.6) -> None:
    s = np.asarray(sv, dtype=np.float64)
    k = np.arange(1, s.size + 1)
    pos = s > 0
    ax.plot(k[pos], s[pos], color=color, ls=ls, lw=lw, label=label)
    mark_zeros(ax, k[~pos], color=color)


def gradient_rank_figure(result: dict):
    """One panel per arm: σ_k of ∂L/∂r, ∂L/∂h pooled, and each position of h (thin)."""
    plt = pyplot()
    arms = result["arms"]
    cols = min(3, len(arms))
    rows = math.ceil(len(arms) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    rule = result.get("rank_rule", "")
    for ax, arm in zip(axes.flat, arms, strict=False):  # spare panels hidden below
        r, h = arm["grad_r"], arm["grad_h_pooled"]
        _curve(ax, r["singular_values"], color="C0", ls="-",
               label=rf"$\partial L/\partial r$ ({r['shape'][0]}x{r['shape'][1]}), "
                     f"rank {r['rank']}")
        _curve(ax, h["singular_values"], color="C3", ls="--",
               label=rf"$\partial L/\partial h$ pooled, rank {h['rank']}")
        for j, pos in enumerate(arm.get("grad_h_per_position", [])):
            _curve(ax, pos["singular_values"], color="0.6", ls=":", lw=0.8,
                   label=None if j else rf"$\partial L/\partial h$ per position "
                                        f"({len(arm['grad_h_per_position'])})")
        if arm.get("d0"):
            ax.axvline(arm["d0"], color="0.3", lw=0.8, ls="-.", label=f"d0 = {arm['d0']}")
        ax.set_yscale("log")
        ax.set_title(arm["label"], fontsize=10)
        ax.set_xlabel(r"index $k$ (singular values sorted)")
        ax.set_ylabel(r"singular value $\sigma_k$ (log scale)")
        integer_ticks(ax.xaxis)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(arms):]:
        ax.set_visible(False)
    fig.suptitle(f"gradient rank (Fig 10), float64; rank = {rule}", fontsize=10)
    fig.tight_layout()
    return fig


def write_gradient_rank_figure(result: dict, path: str | os.PathLike) -> Path:
    return save_figure(gradient_rank_figure(result), path, dpi=110)
