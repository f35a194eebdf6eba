"""The reproduction's figures, drawn from the files on disk (spectrum.json) and results rows.

- Fig 7b / 9: representation spectra (test split) of every arm, one seed (`plot_spectra`)
- Fig 2: the embedding spectrum of the 2-layer projector (z, 128-d), every seed
- Fig 12: linear-probe top-1 against d0 (DirectCLR), mean +- std over seeds
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dimcollapse.errors import UserError
from dimcollapse.figures import pyplot, save_figure
from dimcollapse.report.spectrum_plot import plot_spectra, replot_spectrum_folder

FIG_SPECTRA = "fig7b_representation_spectra.png"
FIG_EMBEDDING = "fig2_embedding_spectrum_mlp.png"
FIG_D0 = "fig12_top1_vs_d0.png"


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


def draw_all(rows: list[dict], out_dir: str | os.PathLike) -> dict[str, str]:
    """Every figure that the rows allow; name -> file name relative to out_dir."""
    made = {"representation_spectra": representation_spectra(rows, out_dir),
            "embedding_spectrum_mlp": embedding_spectrum(rows, out_dir),
            "top1_vs_d0": top1_vs_d0(rows, out_dir)}
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
