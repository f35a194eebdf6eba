"""The reproduction's figures, drawn from the files on disk (spectrum.json) and results rows.

- Fig 7b / 9: representation spectra (test split) of every arm, one seed (`plot_spectra`)
- Fig 2: the embedding spectrum of the 2-layer projector (z, 128-d), every seed
- Fig 12: linear-probe top-1 against d0 (DirectCLR), mean +- std over seeds
- collapse over training: RankMe(r), collapsed dims of r and RankMe(z) on the spectrum hook's
  fixed probe set (metrics.jsonl probe_* keys) against step, every arm, mean and range over
  seeds (no published figure shows this)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dimcollapse.errors import UserError
from dimcollapse.figures import pyplot, save_figure
from dimcollapse.report.spectrum_plot import plot_spectra, replot_spectrum_folder

FIG_SPECTRA = "fig7b_representation_spectra.png"
FIG_EMBEDDING = "fig2_embedding_spectrum_mlp.png"
FIG_D0 = "fig12_top1_vs_d0.png"
FIG_OVER_TRAINING = "collapse_over_training.png"
# (metrics.jsonl key, panel title) of collapse_over_training.png
OVER_TRAINING_PANELS = (("probe_rankme_r", "RankMe of r"),
                        ("probe_collapsed_dims_r", "collapsed dims of r (< 1e-4 x largest)"),
                        ("probe_rankme_z", "RankMe of z"))


def _precision(rows: list[dict], out_dir: Path, rel: str) -> str:
    """The precision the spectra were computed in (spectrum.json `precision`; float64)."""
    for row in rows:
        for s in row["per_seed"]:
            path = out_dir / s["run_dir"] / rel
            if path.is_file():
                return json.loads(path.read_text()).get("precision", "float64")
    return "float64"


def _eigenvalues(out_dir: Path, run_dir: str, rel: str) -> np.ndarray | None:
    path = out_dir / run_dir / rel
    if not path.is_file():
        return None
    return np.asarray(json.loads(path.read_text())["eigenvalues"], dtype=np.float64)


def representation_spectra(rows: list[dict], out_dir: str | os.PathLike, *,
                           title_suffix: str = "") -> Path | None:
    """Overlay of r's spectrum per arm (its first seed). Returns the PNG path or None."""
    out_dir = Path(out_dir)
    curves, seed = {}, None
    precision = _precision(rows, out_dir, "spectrum_representation/spectrum.json")
    for row in rows:
        if not row["per_seed"]:
            continue
        first = row["per_seed"][0]
        ev = _eigenvalues(out_dir, first["run_dir"], "spectrum_representation/spectrum.json")
        if ev is not None:
            curves[f"{row['label']} (seed {first['seed']})"] = ev
            seed = first["seed"] if seed is None else seed
    if not curves:
        return None
    return plot_spectra(curves, out_dir / FIG_SPECTRA,
                        title="Representation spectra of r on the test split "
                        f"(Fig 7b / 9){title_suffix}", precision=precision)


def embedding_spectrum(rows: list[dict], out_dir: str | os.PathLike, *,
                       arm_key: str = "mlp") -> Path | None:
    """Spectrum of the 2-layer projector's embedding z, one curve per seed (Fig 2)."""
    out_dir = Path(out_dir)
    row = next((r for r in rows if r["key"] == arm_key), None)
    if row is None:
        return None
    curves = {}
    for s in row["per_seed"]:
        ev = _eigenvalues(out_dir, s["run_dir"], "spectrum_embedding/spectrum.json")
        if ev is not None:
            curves[f"seed {s['seed']}"] = ev  # the legend adds the count below threshold
    if not curves:
        return None
    return plot_spectra(curves, out_dir / FIG_EMBEDDING, threshold=1e-4,
                        title=f"Embedding spectrum of z, {row['label']} (Fig 2)",
                        precision=_precision([row], out_dir, "spectrum_embedding/spectrum.json"))


def top1_vs_d0(rows: list[dict], out_dir: str | os.PathLike) -> Path | None:
    """Top-1 (mean +- std over seeds) against d0 for the DirectCLR arms; None if < 2 values.
    The no-projector arm, when present, is drawn as a horizontal reference."""
    plt = pyplot()

    sweep = sorted((r for r in rows if r["projector"] == "directclr" and r["top1"]),
                   key=lambda r: r["d0"])
    if len(sweep) < 2:
        return None
    x = [r["d0"] for r in sweep]
    y = [r["top1"]["mean"] for r in sweep]
    err = [r["top1"]["std"] or 0.0 for r in sweep]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label="DirectCLR (mean ± std)")
    none = next((r for r in rows if r["key"] == "none" and r["top1"]), None)
    if none is not None:
        ax.axhline(none["top1"]["mean"], color="gray", ls="--",
                   label=f"no projector ({none['top1']['mean']:.2f})")
    paper = next((r for r in sweep if r["paper_top1"] is not None), None)
    if paper is not None:
        ax.axvline(paper["d0"], color="C3", ls=":", lw=1,
                   label=f"d0 = {paper['d0']} (the paper's 360/2048)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(x)
    ax.set_xticklabels([str(v) for v in x])
    ax.set_xlabel("d0 (coordinates of r the loss sees)")
    ax.set_ylabel("linear probe top-1 (%)")
    ax.set_title("Top-1 against d0 (Fig 12)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, Path(out_dir) / FIG_D0)


def probe_curves(run_dir: str | os.PathLike) -> dict[str, dict[int, float]]:
    """{key: {step: value}} of the probe_* keys in a run's metrics.jsonl (empty if none)."""
    from dimcollapse.train.run_folder import RunFolder

    out: dict[str, dict[int, float]] = {key: {} for key, _ in OVER_TRAINING_PANELS}
    for record in RunFolder(run_dir, writer=False).read_metrics():
        for key in out:
            if record.get(key) is not None:
                out[key][int(record["step"])] = float(record[key])
    return {k: v for k, v in out.items() if v}


def over_training(rows: list[dict], out_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Per arm label and key: steps and the mean, min, max over seeds at each step (steps
    that every seed measured). Arms without probe_* keys are left out."""
    out_dir = Path(out_dir)
    result: dict[str, dict[str, Any]] = {}
    for row in rows:
        runs = [probe_curves(out_dir / s["run_dir"]) for s in row["per_seed"]]
        runs = [r for r in runs if r]
        if not runs:
            continue
        arm = {}
        for key, _ in OVER_TRAINING_PANELS:
            if not all(key in r for r in runs):
                continue
            steps = sorted(set.intersection(*(set(r[key]) for r in runs)))
            vals = np.array([[r[key][s] for s in steps] for r in runs], dtype=np.float64)
            arm[key] = {"steps": steps, "mean": vals.mean(0).tolist(),
                        "min": vals.min(0).tolist(), "max": vals.max(0).tolist(),
                        "seeds": len(runs)}
        if arm:
            result[row["label"]] = arm
    return result


def not_over_training(rows: list[dict], curves: dict[str, dict[str, Any]]) -> list[str]:
    """The arms `over_training` left out (named under the figure, so none goes missing
    silently)."""
    return [row["label"] for row in rows if row["label"] not in curves]


def collapse_over_training(rows: list[dict], out_dir: str | os.PathLike) -> Path | None:
    """collapse_over_training.png: one panel per probe metric, one line per arm (mean over
    seeds, shaded from the lowest to the highest seed). None when no run has probe_* keys."""
    curves = over_training(rows, out_dir)
    if not curves:
        return None
    from dimcollapse.figures import integer_ticks, line_styles

    plt = pyplot()
    fig, axes = plt.subplots(1, len(OVER_TRAINING_PANELS),
                             figsize=(5.0 * len(OVER_TRAINING_PANELS), 4.2))
    styles = line_styles(len(curves))
    seeds = max(c["seeds"] for arm in curves.values() for c in arm.values())
    for ax, (key, title) in zip(axes, OVER_TRAINING_PANELS, strict=True):
        for (label, arm), (color, ls) in zip(curves.items(), styles, strict=True):
            if key not in arm:
                continue
            c = arm[key]
            ax.plot(c["steps"], c["mean"], color=color, ls=ls, lw=1.5, marker=".", label=label)
            if c["seeds"] > 1:
                ax.fill_between(c["steps"], c["min"], c["max"], color=color, alpha=0.15, lw=0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimizer step")
        integer_ticks(ax.xaxis)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    spread = (f"mean over seeds (up to {seeds}), shaded: lowest to highest seed" if seeds > 1
              else "one seed")
    missing = not_over_training(rows, curves)
    note = (f"\nnot drawn (their runs hold no probe-set records, e.g. trained before the probe "
            f"set existed): {', '.join(missing)}" if missing else "")
    fig.suptitle("Collapse over training on the fixed probe set (held-out images, eval mode; "
                 f"{spread}){note}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, Path(out_dir) / FIG_OVER_TRAINING)


def draw_all(rows: list[dict], out_dir: str | os.PathLike) -> dict[str, str]:
    """Every figure that the rows allow; name -> file name relative to out_dir."""
    made = {"representation_spectra": representation_spectra(rows, out_dir),
            "embedding_spectrum_mlp": embedding_spectrum(rows, out_dir),
            "top1_vs_d0": top1_vs_d0(rows, out_dir),
            "collapse_over_training": collapse_over_training(rows, out_dir)}
    return {k: Path(v).name for k, v in made.items() if v is not None}


def spectrum_title(space: str, label: str, seed: int) -> str:
    """The title `reproduce` gives a run's spectrum.png (kept here so a replot matches it)."""
    what = "Representation (r)" if space == "representation" else "Embedding (z)"
    return f"{what} spectrum: {label}, seed {seed}"


def replot(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw every figure of a reproduction folder from its JSON alone (no training, no
    features): each run's spectrum_{embedding,representation}/spectrum.png from spectrum.json,
    and the summary figures from results.json. Returns the PNGs written."""
    out = Path(out_dir)
    path = out / "results.json"
    if not path.is_file():
        raise UserError(f"no {path} to replot from: pass the --out folder of a reproduction")
    rows = json.loads(path.read_text())["arms"]
    written = []
    for row in rows:
        for s in row["per_seed"]:
            for space in ("embedding", "representation"):
                folder = out / s["run_dir"] / f"spectrum_{space}"
                if (folder / "spectrum.json").is_file():
                    written.append(replot_spectrum_folder(
                        folder, title=spectrum_title(space, row["label"], s["seed"])))
    return written + [out / name for name in draw_all(rows, out).values()]
