"""PNG figures of the toy experiments, drawn from their JSON results (dicts as on disk).

Each function takes the loaded JSON and a path and writes one PNG (matplotlib, Agg backend).
"""

from __future__ import annotations

import numpy as np

from dimcollapse.figures import pyplot, save_figure


def _log10(v, floor_rel: float = 1e-16) -> np.ndarray:
    """log10 with non-positive values (round-off of a collapsed direction) floored at
    floor_rel x the largest, so they plot at the bottom instead of vanishing."""
    v = np.asarray(v, dtype=np.float64)
    floor = floor_rel * max(float(np.max(v)), 1e-300)
    return np.log10(np.maximum(v, floor))


def strong_aug_figure(res: dict, path) -> None:
    """Fig 3: log singular values of W per k at the end (start dashed), and their evolution."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("viridis")
    runs = res["runs"]
    steps = np.asarray(res["trajectory_steps"])
    for i, run in enumerate(runs):
        c = cmap(i / max(len(runs) - 1, 1))
        idx = np.arange(1, len(run["sv_end"]) + 1)
        ax1.plot(idx, _log10(run["sv_end"]), "o-", color=c, ms=3, label=f"k = {run['k']:g}")
        ax1.plot(idx, _log10(run["sv_start"]), "--", color=c, lw=0.8, alpha=0.6)
        traj = _log10(np.asarray(run["sv_trajectory"]))
        half = traj.shape[1] // 2
        ax2.plot(steps, traj[:, :half].mean(1), "-", color=c, label=f"k = {run['k']:g}")
        ax2.plot(steps, traj[:, half:].mean(1), ":", color=c)
    ax1.set(xlabel="singular value index", ylabel="log10 singular value of W",
            title="Fig 3: W after training (dashed: start)")
    ax2.set(xlabel="step", ylabel="mean log10 singular value",
            title="top half (solid) and bottom half (dotted)")
    ax1.legend(fontsize=8)
    save_figure(fig, path, dpi=110, bbox_inches="tight")


def alignment_figure(res: dict, path) -> None:
    """Fig 5: |A| = |V2^T U1| at the start and the end, and its diagonal / block mass."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    for ax, key, title in ((axes[0], "alignment_start", "start"),
                           (axes[1], "alignment_end", f"step {res['steps'][-1]}")):
        im = ax.imshow(np.asarray(res[key]), vmin=0, vmax=1, cmap="magma")
        ax.set(title=f"|A| = |V2^T U1|, {title}", xlabel="k' (W1 left sv)",
               ylabel="k (W2 right sv)")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    ax = axes[2]
    for run in res.get("runs", [res]):
        ax.plot(run["steps"], run["alignment_diagonal_mass"], label=f"diagonal, lr {run['lr']:g}")
        ax.plot(run["steps"], run["alignment_block_mass"], "--",
                label=f"near-equal blocks, lr {run['lr']:g}")
        ax.plot(run["steps"], run["alignment_permutation_mass"], "-.",
                label=f"largest entry per row, lr {run['lr']:g}")
        ax.plot(run["steps"], run["grown_alignment_mass"], ":",
                label=f"blocks among grown pairs, lr {run['lr']:g}")
    ax.set(xlabel="step", ylabel="share of |A|^2", ylim=(0, 1.02), title="alignment")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=110, bbox_inches="tight")


def trajectories_figure(res: dict, path) -> None:
    """Fig 6a-c: singular values of W1, W2 and the embedding spectrum over training."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    steps = np.asarray(res["steps"])
    for ax, key, title in ((axes[0], "sv_w1_trajectory", "(a) singular values of W1"),
                           (axes[1], "sv_w2_trajectory", "(b) singular values of W2"),
                           (axes[2], "embedding_spectrum_trajectory",
                            "(c) embedding covariance eigenvalues")):
        traj = np.asarray(res[key])
        ax.plot(steps, _log10(traj), lw=1)
        ax.set(xlabel="step", ylabel="log10", title=title)
    save_figure(fig, path, dpi=110, bbox_inches="tight")


def depth_figure(res: dict, path) -> None:
    """Fig 11: embedding spectrum per depth, linear (a) and ReLU (b); start dashed."""
    plt = pyplot()
    relus = sorted({run["relu"] for run in res["runs"]})
    fig, axes = plt.subplots(1, len(relus), figsize=(5.5 * len(relus), 4), squeeze=False)
    depths = sorted({run["layers"] for run in res["runs"]})
    cmap = plt.get_cmap("plasma")
    for ax, rl in zip(axes[0], relus, strict=True):
        for run in (r for r in res["runs"] if r["relu"] == rl):
            c = cmap(depths.index(run["layers"]) / max(len(depths), 1))
            idx = np.arange(1, len(run["embedding_spectrum"]) + 1)
            ax.plot(idx, _log10(run["embedding_spectrum"]), "o-", ms=3, color=c,
                    label=f"L = {run['layers']} ({run['collapsed_end']} collapsed)")
            ax.plot(idx, _log10(run["embedding_spectrum_start"]), "--", lw=0.8, color=c,
                    alpha=0.6)
        ax.set(xlabel="eigenvalue index", ylabel="log10 eigenvalue",
               title=f"Fig 11{'b: ReLU' if rl else 'a: linear'} (dashed: start)")
        ax.legend(fontsize=8)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
