"""PNG figures of the toy experiments, drawn from their JSON results (dicts as on disk).

Each `*_figure(res)` builds the matplotlib Figure from the loaded JSON (tests read its lines,
legends and ticks); `*_png(res, path)` saves it (Agg backend, atomic, no timestamp). Since they
need only the JSON, `dimcollapse toy EXPERIMENT --replot --out DIR` redraws them without
retraining (`replot`).

Conventions of every panel: each of many lines has its own colour/line style and a legend; a
log axis is named with the object it shows; exact zeros (which log10 cannot show) are 'x'
marks on the bottom edge; the collapse criterion is drawn and labelled; the numerical floor of
the training precision is drawn, or named in the legend when it lies far below the data.
"""

from __future__ import annotations

import numpy as np

from dimcollapse.figures import (
    integer_ticks,
    line_styles,
    mark_floor,
    mark_zeros,
    precision_eps,
    pyplot,
    save_figure,
)


def _log10_positive(v) -> tuple[np.ndarray, np.ndarray]:
    """(log10 of v where v > 0, else NaN so the line breaks; mask of exact zeros)."""
    v = np.asarray(v, dtype=np.float64)
    zero = v <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(zero, np.nan, np.log10(np.where(zero, 1.0, v)))
    return out, zero


def _dtype(res: dict) -> str:
    return (res.get("config") or {}).get("dtype", "float32")


def _sv_floor(top: float, dim: int, dtype: str) -> float:
    """Singular values of a d x d matrix of `dtype` numbers below sqrt(d) eps sigma_1 are not
    resolved by the training arithmetic (each update rounds at eps of the largest entries)."""
    return float(dim) ** 0.5 * precision_eps(dtype) * top


def _eig_floor(top: float, dim: int, dtype: str) -> float:
    """Covariance eigenvalues are squared singular values of the embedding map: the floor of
    `_sv_floor` squared, relative to sigma_1 (d eps^2 sigma_1); at least the float64
    eigensolver's own sqrt(d) eps64 sigma_1."""
    return max(dim * precision_eps(dtype) ** 2 * top, dim ** 0.5 * precision_eps("float64") * top)


# -- Fig 3 ----------------------------------------------------------------------------------
def strong_aug_figure(res: dict):
    """Fig 3: log singular values of W per k at the end (start dashed), and their evolution."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.6), layout="constrained")
    runs = res["runs"]
    styles = line_styles(len(runs))
    steps = np.asarray(res["trajectory_steps"])
    dtype, dim = _dtype(res), len(runs[0]["sv_end"])
    lows, tops = [], []
    for run, (c, _) in zip(runs, styles, strict=True):
        idx = np.arange(1, len(run["sv_end"]) + 1)
        end, zero = _log10_positive(run["sv_end"])
        ax1.plot(idx, end, "o-", color=c, ms=3, label=f"k = {run['k']:g}, end")
        ax1.plot(idx, _log10_positive(run["sv_start"])[0], "--", color=c, lw=0.8, alpha=0.6)
        mark_zeros(ax1, idx[zero], color=c)
        traj, _ = _log10_positive(np.asarray(run["sv_trajectory"]))
        half = traj.shape[1] // 2
        ax2.plot(steps, np.nanmean(traj[:, :half], 1), "-", color=c,
                 label=f"k = {run['k']:g}: largest {half}")
        ax2.plot(steps, np.nanmean(traj[:, half:], 1), ":", color=c,
                 label=f"k = {run['k']:g}: smallest {traj.shape[1] - half}")
        tops.append(float(np.max(run["sv_end"])))
        lows.append(float(np.min(np.asarray(run["sv_end"])[~zero])) if (~zero).any() else None)
    ax1.plot([], [], "--", color="0.4", lw=0.8, label="dashed: same k at the start")
    low = min((v for v in lows if v is not None), default=None)
    mark_floor(ax1, _sv_floor(max(tops), dim, dtype), low, precision=dtype, log10=True)
    ax1.set(xlabel="index i of the singular value (descending)",
            ylabel="singular value of W (log10)",
            title="Fig 3: singular values of W after training, per noise scale k")
    integer_ticks(ax1.xaxis)
    ax2.set(xlabel="step", ylabel="mean of log10 singular values of W",
            title="W over training: largest half (solid), smallest half (dotted)")
    ax1.legend(fontsize=7, loc="lower left")
    ax2.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5),
               title="noise k: singular values", title_fontsize=7)
    return fig


# -- Fig 5 ----------------------------------------------------------------------------------
def alignment_figure(res: dict):
    """Fig 5: |A| = |V2^T U1| at the start and the end (each with its colour bar), and the
    share of |A|^2 on the diagonal, in blocks of near-equal singular values, etc."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1.35]})
    d = len(res["alignment_start"])
    tol = (res.get("config") or {}).get("block_rel_tol", 0.10)
    for ax, key, when in ((axes[0], "alignment_start", "step 0"),
                          (axes[1], "alignment_end", f"step {res['steps'][-1]}")):
        im = ax.imshow(np.asarray(res[key]), vmin=0, vmax=1, cmap="magma",
                       extent=(0.5, d + 0.5, d + 0.5, 0.5))
        ax.set(title=f"|A| = |V2ᵀ U1| at {when}", xlabel="k' (left singular vector of W1)",
               ylabel="k (right singular vector of W2)")
        integer_ticks(ax.xaxis)
        integer_ticks(ax.yaxis)
        fig.colorbar(im, ax=ax, fraction=0.046, label="|A_kk'|")
    ax = axes[2]
    runs = res.get("runs", [res])
    styles = ["-", "--", "-.", ":"]
    for i, run in enumerate(runs):
        c = f"C{i}"
        lr = f"lr {run['lr']:g}"
        for key, ls, what in (("alignment_diagonal_mass", styles[0], "on the diagonal"),
                              ("alignment_block_mass", styles[1], "in near-equal blocks"),
                              ("alignment_permutation_mass", styles[2],
                               "largest entry per row"),
                              ("grown_alignment_mass", styles[3],
                               "blocks, grown pairs only")):
            ax.plot(run["steps"], run[key], ls=ls, color=c, label=f"{what}, {lr}")
    ax.set(xlabel="step", ylabel="share of |A|² (0 to 1)", ylim=(0, 1.02),
           title=f"Alignment over training ({d} x {d}; chance diagonal share {1 / d:.2f})")
    ax.legend(fontsize=6.5, loc="lower right", title=(
        f"near-equal block: consecutive k whose singular values\n(of W1 or W2) are within "
        f"{tol:.0%} of each other"), title_fontsize=6.5)
    return fig


# -- Fig 6 ----------------------------------------------------------------------------------
def trajectories_figure(res: dict):
    """Fig 6a-c: singular values of W1, W2 and the embedding spectrum over training, one line
    per index k (all distinct, with a legend), and (d) the embedding eigenvalues as a gap to
    the largest, log10(sigma_k / sigma_1), with the collapse criterion that the count uses."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.6), layout="constrained")
    steps = np.asarray(res["steps"])
    dtype = _dtype(res)
    panels = ((axes[0, 0], "sv_w1_trajectory", "(a) singular values of W1",
               "singular value of W1 (log10)", _sv_floor),
              (axes[0, 1], "sv_w2_trajectory", "(b) singular values of W2",
               "singular value of W2 (log10)", _sv_floor),
              (axes[1, 0], "embedding_spectrum_trajectory",
               "(c) eigenvalues of the embedding covariance",
               "eigenvalue σ_k of the embedding covariance (log10)", _eig_floor))
    handles = None
    for ax, key, title, ylabel, floor_of in panels:
        traj = np.asarray(res[key], dtype=np.float64)
        logs, zero = _log10_positive(traj)
        d = traj.shape[1]
        for k, (c, ls) in enumerate(line_styles(d)):
            ax.plot(steps, logs[:, k], color=c, ls=ls, lw=1.1, label=f"k = {k + 1}")
        if zero.any():
            rows, cols = np.nonzero(zero)
            mark_zeros(ax, steps[rows], color="k", label=f"exact zeros ({len(rows)})")
        floor = floor_of(float(traj.max()), d, dtype)
        mark_floor(ax, floor, float(traj[traj > 0].min()), precision=dtype, log10=True,
                   formula=r"$\sqrt{d}\,\epsilon\,s_1$" if floor_of is _sv_floor
                   else r"$d\,\epsilon^2\,\sigma_1$")
        ax.set(xlabel="step", ylabel=ylabel, title=title)
        if handles is None:
            handles = ax.get_legend_handles_labels()
        ax.legend(*_last_entries(ax, d), fontsize=7, loc="lower left")
    assert handles is not None  # set by the first panel
    fig.legend(*[h[:len(line_styles(len(res[panels[0][1]][0])))] for h in handles],
               title="index k (descending)", fontsize=7, loc="outside right center")
    _gap_panel(axes[1, 1], res, steps)
    return fig


def _last_entries(ax, d: int):
    """The legend entries of a panel after its d per-k lines (zeros, floor)."""
    h, labels = ax.get_legend_handles_labels()
    return h[d:], labels[d:]


def _gap_panel(ax, res: dict, steps: np.ndarray) -> None:
    """log10(sigma_k / sigma_1) of the embedding covariance per k, and the collapse line."""
    traj = np.asarray(res["embedding_spectrum_trajectory"], dtype=np.float64)
    d, dec = traj.shape[1], float(res["collapse_decades"])
    top = traj.max(axis=1, keepdims=True)
    gap, zero = _log10_positive(traj / np.where(top > 0, top, 1.0))
    for k, (c, ls) in enumerate(line_styles(d)):
        ax.plot(steps, gap[:, k], color=c, ls=ls, lw=1.1)
    ax.axhline(-dec, color="k", ls=":", lw=1.4,
               label=f"collapse criterion: {dec:g} decades below the largest")
    counts = (traj < top * 10.0 ** (-dec)).sum(axis=1)
    ax.plot([], [], " ", label=f"below it: {res['collapsed_start']} at step {steps[0]}, "
            f"{res['collapsed_end']} at step {steps[-1]}")
    if int(counts[-1]) != int(res["collapsed_end"]):  # never: the JSON's count is this one
        raise ValueError("collapsed_end disagrees with the trajectory")
    if zero.any():
        rows, _ = np.nonzero(zero)
        mark_zeros(ax, steps[rows], color="k", label=f"exact zeros ({len(rows)})")
    rel = traj / np.where(top > 0, top, 1.0)
    mark_floor(ax, _eig_floor(1.0, d, _dtype(res)), float(rel[rel > 0].min()),
               precision=_dtype(res), log10=True, formula=r"$d\,\epsilon^2$")
    ax.set(xlabel="step", ylabel="log10(σ_k / σ_1), embedding covariance",
           title="(d) gap to the largest: log10(σ_k / σ_1), as counted")
    ax.legend(fontsize=7, loc="lower left")


# -- Fig 11 ---------------------------------------------------------------------------------
def depth_figure(res: dict):
    """Fig 11: embedding spectrum per depth, linear (a) and ReLU (b), as sigma_k / sigma_1 so
    that one threshold line serves every curve; start dashed; exact zeros marked; float floor."""
    plt = pyplot()
    relus = sorted({run["relu"] for run in res["runs"]})
    fig, axes = plt.subplots(1, len(relus), figsize=(6.6 * len(relus), 4.8), squeeze=False,
                             layout="constrained", sharey=True)
    depths = sorted({run["layers"] for run in res["runs"]})
    styles = line_styles(len(depths))
    thr = float(res["config"]["rel_threshold"])
    dtype = _dtype(res)
    for ax, rl in zip(axes[0], relus, strict=True):
        low, dim = None, 1
        for run in (r for r in res["runs"] if r["relu"] == rl):
            c, _ = styles[depths.index(run["layers"])]
            ev = np.asarray(run["embedding_spectrum"], dtype=np.float64)
            dim = max(dim, ev.size)
            idx = np.arange(1, ev.size + 1)
            rel, zero = _log10_positive(ev / ev.max())
            zeros = f", {int(zero.sum())} exact zeros (x)" if zero.any() else ""
            ax.plot(idx, rel, "o-", ms=3, color=c,
                    label=f"L = {run['layers']}: {run['collapsed_end']} collapsed{zeros}")
            ax.plot(idx, _log10_positive(np.asarray(run["embedding_spectrum_start"]) /
                                         np.max(run["embedding_spectrum_start"]))[0],
                    "--", lw=0.8, color=c, alpha=0.6)
            mark_zeros(ax, idx[zero], color=c)
            pos = ev[~zero] / ev.max()
            if pos.size:
                low = float(pos.min()) if low is None else min(low, float(pos.min()))
        ax.plot([], [], "--", color="0.4", lw=0.8, label="dashed: same L at the start")
        ax.axhline(np.log10(thr), color="k", ls=":", lw=1.3,
                   label=f"collapse threshold: {thr:g} x largest")
        mark_floor(ax, _eig_floor(1.0, dim, dtype), low, precision=f"{dtype} weights",
                   log10=True, formula=r"$d\,\epsilon^2\,\sigma_1$")
        ax.set(xlabel="index k of the eigenvalue (descending)",
               ylabel="log10(σ_k / σ_1), embedding covariance",
               title=f"Fig 11{'b: with ReLU' if rl else 'a: linear'}, per depth L")
        integer_ticks(ax.xaxis)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    return fig


# -- files ----------------------------------------------------------------------------------
def _png(build):
    def write(res: dict, path) -> None:
        save_figure(build(res), path, dpi=110, bbox_inches="tight")
    write.__name__ = build.__name__.replace("_figure", "_png")
    write.__doc__ = f"Save `{build.__name__}(res)` as a PNG at `path`."
    return write


strong_aug_png = _png(strong_aug_figure)
alignment_png = _png(alignment_figure)
trajectories_png = _png(trajectories_figure)
depth_png = _png(depth_figure)
