"""`dimcollapse compare`'s outputs, from the probe.json and spectrum.json files of several runs.

One row per run: linear probe top-1/top-5, kNN top-1, the probe's l2, and the collapse metrics
of r and z (RankMe, collapsed dims); one figure overlaying the runs' representation spectra
(the paper's Fig 7b / 9). Files: compare.md, compare.csv, compare.json, compare_spectra.png.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dimcollapse.report.spectrum_plot import plot_spectra
from dimcollapse.report.tables import markdown_table, write_csv
from dimcollapse.runinfo import atomic_write_bytes, write_json
from dimcollapse.runstatus import refresh_status

PROBE = "probe.json"
SPECTRUM_R = "spectrum_representation/spectrum.json"
SPECTRUM_Z = "spectrum_embedding/spectrum.json"
COLUMNS = ["label", "top1", "top5", "knn_top1", "l2", "rankme_r", "collapsed_dims_r",
           "rankme_z", "collapsed_dims_z", "dim_r", "dim_z", "step", "checkpoint"]
HEADERS = ["run", "top-1", "top-5", "kNN top-1", "probe l2", "RankMe r", "collapsed dims r",
           "RankMe z", "collapsed dims z", "d (r)", "d (z)", "step", "checkpoint"]


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def read_run(results_dir: str | os.PathLike) -> dict[str, dict | None]:
    """The evaluation files of one run folder: {"probe", "spectrum_r", "spectrum_z"} (None =
    missing)."""
    d = Path(results_dir)
    return {"probe": _read(d / PROBE), "spectrum_r": _read(d / SPECTRUM_R),
            "spectrum_z": _read(d / SPECTRUM_Z), "run": refresh_status(d)}


def row_of(label: str, files: dict[str, dict | None]) -> dict[str, Any]:
    """One table row (values copied from the files; None where a file is missing)."""
    p, r, z = files["probe"], files["spectrum_r"] or {}, files["spectrum_z"] or {}
    lp = (p or {}).get("linear_probe") or {}
    kn = (p or {}).get("knn") or {}
    ck = (p or {}).get("checkpoint") or (r.get("source") or {}).get("checkpoint") or {}
    return {"label": label, "top1": lp.get("top1"), "top5": lp.get("top5"),
            "knn_top1": kn.get("top1"), "l2": lp.get("l2"),
            "rankme_r": r.get("rankme"), "collapsed_dims_r": r.get("collapsed_dims"),
            "rankme_z": z.get("rankme"), "collapsed_dims_z": z.get("collapsed_dims"),
            "dim_r": r.get("dim"), "dim_z": z.get("dim"),
            "step": ck.get("step"), "checkpoint": ck.get("path"),
            "threshold": r.get("threshold"),
            "run_status": (files.get("run") or {}).get("status")}


def _cell(key: str, v: Any) -> Any:
    if v is None:
        return None
    if key in ("top1", "top5", "knn_top1"):
        return f"{v:.2f}"
    if key.startswith("rankme"):
        return f"{v:.1f}"
    if key == "l2":
        return f"{v:g}"
    return v


def write_compare(rows: list[dict], spectra: dict[str, np.ndarray | None],
                  out_dir: str | os.PathLike, *, metadata: dict | None = None,
                  title: str | None = None) -> dict[str, Path]:
    """Write compare.md/.csv/.json and (when any spectrum exists) compare_spectra.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "compare.json", "csv": out / "compare.csv", "md": out / "compare.md"}
    curves = {k: v for k, v in spectra.items() if v is not None}
    if curves:
        paths["png"] = plot_spectra(curves, out / "compare_spectra.png",
                                    title=title or "Representation spectra (Fig 7b / 9)")
    write_json(paths["json"], {"kind": "dimcollapse-compare", "rows": rows,
                               "figure": paths.get("png") and paths["png"].name,
                               "metadata": metadata})
    write_csv(paths["csv"], COLUMNS, [[r[c] for c in COLUMNS] for r in rows])
    threshold = next((r["threshold"] for r in rows if r.get("threshold")), None)
    text = ["# dimcollapse compare", "",
            "Linear probe and kNN top-1 (%) on the test split; collapse metrics of r and z on "
            "the test split" + (f" (collapsed: eigenvalue < {threshold:g} x the largest)"
                                if threshold else "") + ".", "",
            markdown_table(HEADERS, [[_cell(c, r[c]) for c in COLUMNS] for r in rows],
                           ["l"] + ["r"] * (len(COLUMNS) - 2) + ["l"]), ""]
    if "png" in paths:
        text += [f"![Representation spectra]({paths['png'].name})", ""]
    atomic_write_bytes(paths["md"], "\n".join(text).encode())
    return paths
