"""The per-layer report of `dimcollapse spectrum/probe MODEL --layers`: layers.json, layers.md,
layers.csv, layers.png (one curve per layer, log sigma_k against k/d) and LAYER/spectrum.json +
spectrum.png per layer (the same files as `dimcollapse spectrum`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dimcollapse.report.spectrum_plot import plot_spectra, write_spectrum_report
from dimcollapse.report.tables import markdown_table, write_csv
from dimcollapse.runinfo import atomic_write_bytes, write_json

LAYERS_JSON, LAYERS_MD, LAYERS_CSV, LAYERS_PNG = "layers.json", "layers.md", "layers.csv", \
    "layers.png"
COLUMNS = ("layer", "module", "output", "dim", "collapsed", "RankMe", "effective rank",
           "alpha-ReQ", "collapse", "top-1", "top-5", "kNN top-1")


def _fmt(value: Any, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def table_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """One line per layer (the columns of `COLUMNS`)."""
    out = []
    for r in rows:
        p = r.get("probe") or {}
        shape = "x".join(str(v) for v in r["output_shape"])
        out.append([r["layer"], f"`{r['module']}`", shape + (" (pooled)" if r["pooled"] else ""),
                    r["dim"], r["collapsed_dims"], _fmt(r["rankme"]), _fmt(r["effective_rank"]),
                    _fmt(r["alpha_req"], 3), r["collapse"], _fmt(p.get("top1"), 2),
                    _fmt(p.get("top5"), 2), _fmt(p.get("knn_top1"), 2)])
    return out


def write_layers_report(results: Sequence[Any], out_dir: str | os.PathLike, *,
                        header: Mapping[str, Any], title: str,
                        metadata: Mapping[str, Any]) -> dict[str, Path]:
    """Write every file of the report for `results` (a list of `eval.layers.LayerResult`).

    header: what was measured (model, data, precision, command): the top of layers.json.
    Returns {kind: path}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for res in results:
        write_spectrum_report(res.spectrum, out / res.layer, metadata=metadata,
                              title=f"{title}: {res.layer} ({res.module})")
    rows = [res.row() for res in results]
    curves = {f"{r['layer']} (d={r['dim']})": np.asarray(res.spectrum.eigenvalues)
              for r, res in zip(rows, results, strict=True)}
    png = plot_spectra(curves, out / LAYERS_PNG, title=title, normalize_max=True,
                       relative_index=True, xlabel=r"relative index $k / d$ (d: the layer's "
                       "width)")
    record = {"kind": "dimcollapse-layers", **header, "layers": rows,
              "figure": LAYERS_PNG, "metadata": dict(metadata)}
    paths = {"json": out / LAYERS_JSON, "png": png, "md": out / LAYERS_MD,
             "csv": out / LAYERS_CSV}
    write_json(paths["json"], record)
    table = table_rows(rows)
    threshold = rows[0]["threshold"] if rows else None
    md = [f"# {title}", "",
          f"Command: `{metadata.get('command', '')}`  ",
          f"Data: {header.get('data_text', '')}; git {metadata.get('git_sha')}.", "",
          f"Each layer's output on the held-out split, globally average-pooled where it is a "
          f"feature map; collapsed: eigenvalues of the covariance of the L2-normalised rows "
          f"below {threshold:g} x the largest (Eqn 1). Probe: L-BFGS logistic regression on "
          "the train-standardised layer output (Table 1's protocol), kNN k = 200.", "",
          markdown_table(COLUMNS, table), "", f"![per-layer spectra]({LAYERS_PNG})", ""]
    atomic_write_bytes(paths["md"], "\n".join(md).encode())
    write_csv(paths["csv"], COLUMNS, table)
    return paths
