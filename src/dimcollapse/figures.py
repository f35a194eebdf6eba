"""Matplotlib plumbing shared by every figure: headless backend and atomic, repeatable PNGs."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from dimcollapse.runinfo import atomic_write_bytes


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (no display needed), imported on first use."""
    # matplotlib: only when a figure is drawn
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """Write `fig` as PNG to `path` atomically and close it.

    No timestamp or software tag goes into the PNG metadata, so the same numbers give the
    same bytes (a figure can be diffed like the JSON next to it).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, **savefig_kwargs)
    pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


# -- shared marks of spectrum figures -------------------------------------------------------
# The spectrum (Jing et al. 2022, Eqn 1; docs/spectrum.md): sigma_k, the k-th eigenvalue of the
# embedding covariance C, which is also its k-th singular value (C is symmetric PSD).
SPECTRUM_YLABEL = r"eigenvalue $\sigma_k$ of the covariance (log scale)"
SPECTRUM_XLABEL = r"index $k$ (eigenvalues sorted, $\sigma_1 \geq \sigma_2 \geq \dots$)"
LINESTYLES = ("-", "--", "-.", ":")


def line_styles(n: int) -> list[tuple[str, str]]:
    """(colour, linestyle) for n lines, all distinct: tab10's ten colours, then the same colours
    dashed, dash-dotted, dotted (so 16 lines never share a colour *and* a style)."""
    return [(f"C{i % 10}", LINESTYLES[(i // 10) % len(LINESTYLES)]) for i in range(n)]


def precision_eps(precision: str) -> float:
    """Machine epsilon of a floating-point precision name ("float64", "float32", "bf16")."""
    name = {"fp32": "float32", "fp64": "float64", "double": "float64"}.get(precision, precision)
    if name in ("bf16", "bfloat16"):
        return 2.0 ** -7
    if name in ("fp16", "float16"):
        return 2.0 ** -10
    return float(np.finfo(name).eps)


def numerical_floor(top: float, dim: int, precision: str) -> float:
    """sqrt(d) * eps * sigma_1: eigenvalues below this are rounding, not signal.

    The eigenvalues of a d x d matrix computed in a precision with machine epsilon eps are
    perturbed by rounding of order eps * ||C|| = eps * sigma_1, growing with the d terms of each
    sum (sqrt(d) for random-sign rounding errors). docs/spectrum.md measured 2.5e-15 sigma_1 in
    float64 at d = 256 and 8.5e-8 sigma_1 with float32 products; this bound is above both.
    """
    return float(dim) ** 0.5 * precision_eps(precision) * float(top)


def mark_floor(ax, floor: float, data_min: float | None, *, precision: str,
               color: str = "0.35", decades_shown: float = 4.0,
               formula: str = r"$\sqrt{d}\,\epsilon\,\sigma_1$", log10: bool = False) -> None:
    """Draw the numerical floor as a labelled dash-dot line when it lies within `decades_shown`
    decades of the smallest drawn value; otherwise only a legend entry says how far below the
    axis it is (drawing it would squash the curves into the top of the figure). log10: the
    axis shows log10 values (floor and data_min are still given as plain values)."""
    label = f"numerical floor of {precision} ({formula} = {floor:.1e})"
    if data_min is None or data_min <= 0 or math.log10(data_min / floor) <= decades_shown:
        ax.axhline(math.log10(floor) if log10 else floor, color=color, ls="-.", lw=1.0,
                   label=label)
    else:
        below = math.log10(data_min / floor)
        ax.plot([], [], color=color, ls="-.", lw=1.0,
                label=f"{label}:\n{below:.0f} decades below the smallest, off the axis")


def mark_zeros(ax, ks, *, color: str, label: str | None = None) -> None:
    """Exact-zero eigenvalues (log 0 cannot be drawn): an 'x' per index k on the bottom edge."""
    # matplotlib: only when a figure is drawn
    from matplotlib.transforms import blended_transform_factory

    ks = list(ks)
    if not ks:
        return
    tr = blended_transform_factory(ax.transData, ax.transAxes)
    ax.plot(ks, [0.02] * len(ks), "x", ms=5, mew=1.2, color=color, transform=tr,
            clip_on=False, label=label)


def integer_ticks(axis) -> None:
    """Only integer tick positions on an axis of indices (k, step counts)."""
    # matplotlib: only when a figure is drawn
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
