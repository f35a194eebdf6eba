"""results.md, results.csv and the per-factor spectrum figures of `reproduce collapse-factors`.

Everything is drawn from its results.json dict and the per-arm spectrum.json files; one figure
per factor overlays r's spectrum (first seed) of both arms at each of the factor's values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dimcollapse.report.tables import fmt_mean_std as _fmt
from dimcollapse.report.tables import markdown_table, write_csv
from dimcollapse.runinfo import atomic_write_bytes

SHORT = {"none": "no projector", "mlp": "2-layer projector"}
CSV_HEADERS = ["setting", "factor", "arm", "n_seeds", "r_below_1e-03", "r_below_1e-04",
               "r_below_1e-05", "z_below_1e-04", "rankme_r", "rankme_z", "top1_mean", "top1_std",
               "knn_top1_mean"]


def figure_name(factor: str) -> str:
    return f"fig_factor_{factor}.png"


def _rows_by(results: dict) -> dict[tuple[str, str], dict]:
    return {(r["setting"], r["arm"]): r for r in results["rows"]}


def draw_factor_spectra(results: dict, out_dir: str | os.PathLike) -> dict[str, str]:
    """factor -> PNG name: r's spectrum of both arms across the factor's values (first seed)."""
    from dimcollapse.report.spectrum_plot import plot_spectra

    out, by = Path(out_dir), _rows_by(results)
    figures = {}
    for factor, values in results["factors"].items():
        curves = {}
        for v in values:
            for arm in (a["key"] for a in results["arms"]):
                row = by.get((v["setting"], arm))
                if row is None or not row["per_seed"]:
                    continue
                first = row["per_seed"][0]
                path = out / first["run_dir"] / "spectrum_representation" / "spectrum.json"
                if path.is_file():
                    ev = np.asarray(json.loads(path.read_text())["eigenvalues"])
                    curves[f"{SHORT.get(arm, arm)}, {factor} {v['label']}"] = ev
        if curves:
            name = figure_name(factor)
            plot_spectra(curves, out / name, title=f"Spectrum of r (test split) across "
                         f"{factor}: no projector vs 2-layer projector")
            figures[factor] = name
    return figures


def _count(row: dict | None, space: str, key: str) -> str:
    return "–" if row is None else _fmt(row[f"below_{space}"][key], 1)


def results_markdown(results: dict) -> str:
    by = _rows_by(results)
    keys = [f"{t:.0e}" for t in results["thresholds"]]
    lines = ["# What decides whether r collapses without a projector (collapse-factors)", "",
             f"Schedule (baseline): {results['schedule']}.", "",
             f"Seeds: {', '.join(map(str, results['seeds']))}. One factor at a time is changed "
             "from the baseline; each setting trains the no-projector arm and the 2-layer "
             "projector arm under the same budget. Counts are eigenvalues of the covariance "
             "of r (L2-normalised test-split features, centred, Eqn 1) below t x the "
             "largest; mean ± std over seeds.", "", "## Findings", ""]
    lines += [f"- {line}" for line in results["findings"]["lines"]]
    headers = ["value", "arm", *(f"r < {k}" for k in keys), "z < 1e-04", "RankMe r",
               "RankMe z", "top-1", "kNN top-1", "run"]
    for factor, values in results["factors"].items():
        lines += ["", f"## {factor}", ""]
        body = []
        for v in values:
            for arm in (a["key"] for a in results["arms"]):
                row = by.get((v["setting"], arm))
                body.append([v["label"], SHORT.get(arm, arm),
                             *(_count(row, "r", k) for k in keys), _count(row, "z", "1e-04"),
                             "–" if row is None else _fmt(row["rankme_r"], 1),
                             "–" if row is None else _fmt(row["rankme_z"], 1),
                             "–" if row is None else _fmt(row["top1"]),
                             "–" if row is None else _fmt(row["knn_top1"]),
                             f"runs/{v['setting']}/{arm}"])
        lines.append(markdown_table(headers, body))
        if factor in results.get("figures", {}):
            lines += ["", f"![{factor}]({results['figures'][factor]})"]
    pc = results.get("precision_check")
    if pc:
        lines += ["", "## Precision of the measurement", "",
                  f"{pc['definition']}. Arm: runs/{pc['setting']}/{pc['arm']}/seed{pc['seed']} "
                  f"({pc['n']} test images, {pc['dim']} dims).", ""]
        lines.append(markdown_table(
            ["features", *(f"r < {k}" for k in keys), "smallest / largest eigenvalue"],
            [[name, *(pc[name]["below"][k] for k in keys), f"{pc[name]['min_relative']:.3g}"]
             for name in ("fp32", "bf16")]))
        lines += ["", f"Noise floor: {pc['noise_floor']:.3g} of the largest eigenvalue "
                  f"(details: {pc['file']})."]
    md = results["metadata"]
    lines += ["", "## Provenance", "",
              f"- command: `{md.get('command')}`", f"- git sha: {md.get('git_sha')}",
              f"- runs: {results['total_jobs']} ({results['reused_arms']} reused); wall "
              f"{results['wall_s']:.0f} s, of it {results['arm_wall_s']:.0f} s in the runs; "
              f"{results['threads']} threads; load average "
              f"{results['load_average']['start']:.2f} at start / "
              f"{results['load_average']['end']:.2f} at end", ""]
    return "\n".join(lines)


def csv_rows(results: dict) -> list[list]:
    out = []
    for r in results["rows"]:
        m = {k: (None if s is None else s["mean"]) for k, s in r["below_r"].items()}
        out.append([r["setting"], r["factor"] or "", r["arm"], len(r["seeds"]), m["1e-03"],
                    m["1e-04"], m["1e-05"], (r["below_z"]["1e-04"] or {}).get("mean"),
                    (r["rankme_r"] or {}).get("mean"), (r["rankme_z"] or {}).get("mean"),
                    (r["top1"] or {}).get("mean"), (r["top1"] or {}).get("std"),
                    (r["knn_top1"] or {}).get("mean")])
    return out


def write_factors_report(results: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write out_dir/results.md and out_dir/results.csv; returns their paths."""
    out = Path(out_dir)
    md, csv = out / "results.md", out / "results.csv"
    atomic_write_bytes(md, results_markdown(results).encode())
    write_csv(csv, CSV_HEADERS, csv_rows(results))
    return md, csv
