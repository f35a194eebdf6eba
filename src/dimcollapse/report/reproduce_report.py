"""results.md and results.csv of `dimcollapse reproduce`, from its results.json dict."""

from __future__ import annotations

import os
from pathlib import Path

from dimcollapse.report.tables import fmt_mean_std as _fmt
from dimcollapse.report.tables import markdown_table, write_csv
from dimcollapse.runinfo import atomic_write_bytes

HEADERS = ["arm", "paper ImageNet top-1", "top-1 (mean ± std)", "top-5", "kNN top-1",
           "RankMe r", "collapsed dims r", "collapsed dims z", "seeds"]
CSV_HEADERS = ["table", "arm", "label", "projector", "d0", "paper_top1", "n_seeds",
               "top1_mean", "top1_std", "top5_mean", "knn_top1_mean", "knn_top1_std",
               "rankme_r_mean", "collapsed_dims_r_mean", "collapsed_dims_z_mean",
               "rankme_z_mean", "subvector_top1_mean", "top1_values"]


def _row(r: dict) -> list:
    return [r["label"], _paper(r["paper_top1"]),
            _fmt(r["top1"]), _fmt(r["top5"]), _fmt(r["knn_top1"]), _fmt(r["rankme_r"], 1),
            _fmt(r["collapsed_dims_r"], 1), _fmt(r["collapsed_dims_z"], 1),
            len(r["seeds"])]


def _paper(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _subvector_rows(rows: list[dict]) -> list[list]:
    out = []
    for r in rows:
        if r.get("subvector_top1"):
            out.append([f"{r['label']}, probe on r[:, :{r['d0']}] only (App. F)",
                        _paper(r["paper_subvector_top1"]), _fmt(r["subvector_top1"]),
                        "", "", "", "", "", len(r["seeds"])])
    return out


def results_markdown(results: dict) -> str:
    """The Markdown report: provenance, one table per reproduced table, findings, figures."""
    b, meta = results["budget"], results["metadata"]
    rows = {r["key"]: r for r in results["arms"]}
    lines = [f"# dimcollapse reproduce {results['target']} (preset {b['preset']})", "",
             f"Command: `{meta['command']}`  ", f"git {meta['git_sha']}, {meta['utc']}, "
             f"wall time {results['wall_s']:.0f} s this invocation ({results['reused_arms']} of "
             f"{results['total_jobs']} arm-seeds reused from earlier invocations; the arm-seeds "
             f"themselves took {results['arm_wall_s']:.0f} s in total), torch "
             f"{meta['torch']}, {results['threads']} thread(s), load average "
             f"{results['load_average']['start']:.2f} at start / "
             f"{results['load_average']['end']:.2f} at end.", "",
             f"Budget (identical for every arm and seed): {results['schedule']}. Seeds: "
             f"{', '.join(str(s) for s in results['seeds'])}. Probe: {results['protocol']}.",
             "", "Accuracies are linear-probe top-1/top-5 (%) on the test split; ± is the "
             "sample standard deviation over seeds. The paper's column is ImageNet with "
             "ResNet-50 for 100 epochs (SPEC §4): a reference for the ordering, not for the "
             "values. Collapsed dims: eigenvalues of the covariance of L2-normalised vectors "
             f"below {results['collapse_threshold']:g} x the largest (test split).", ""]
    for table, keys in results["tables"].items():
        table_rows = [_row(rows[k]) for k in keys if k in rows]
        table_rows += _subvector_rows([rows[k] for k in keys if k in rows])
        lines += [f"## {results['table_titles'].get(table, table)}", "",
                  markdown_table(HEADERS, table_rows, ["l"] + ["r"] * 8), ""]
    lines += ["## Findings", ""]
    lines += [f"- {line}" for line in results["findings"]["lines"]] or ["- (none)"]
    lines.append("")
    captions = {"representation_spectra": "Representation spectra (Fig 7b / 9)",
                "embedding_spectrum_mlp": "Embedding spectrum of the 2-layer projector (Fig 2)",
                "top1_vs_d0": "Top-1 against d0 (Fig 12)",
                "collapse_over_training": "Collapse over training on the fixed probe set "
                                          "(RankMe of r, collapsed dims of r, RankMe of z)"}
    if results["figures"]:
        lines += ["## Figures", ""]
        for name, file in results["figures"].items():
            lines += [f"![{captions.get(name, name)}]({file})", ""]
    lines += ["## Per-arm commands", "",
              "Each arm's run folder holds `reproduce_arm.json` with the exact `dimcollapse "
              "train`, `probe` and `spectrum` commands that recompute it, its git sha and wall "
              "time.", ""]
    return "\n".join(lines)


def csv_rows(results: dict) -> list[list]:
    out = []
    rows = {r["key"]: r for r in results["arms"]}
    for table, keys in results["tables"].items():
        for k in keys:
            r = rows.get(k)
            if r is None:
                continue

            def m(name, r=r):
                return None if r[name] is None else r[name]["mean"]

            out.append([table, k, r["label"], r["projector"], r["d0"], r["paper_top1"],
                        len(r["seeds"]), m("top1"),
                        None if r["top1"] is None else r["top1"]["std"], m("top5"),
                        m("knn_top1"), None if r["knn_top1"] is None else r["knn_top1"]["std"],
                        m("rankme_r"), m("collapsed_dims_r"), m("collapsed_dims_z"),
                        m("rankme_z"), m("subvector_top1"),
                        " ".join(f"{v:.2f}" for v in (r["top1"] or {}).get("values", []))])
    return out


def write_results_report(results: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write out_dir/results.md and out_dir/results.csv; returns their paths."""
    out = Path(out_dir)
    md, csv = out / "results.md", out / "results.csv"
    atomic_write_bytes(md, results_markdown(results).encode())
    write_csv(csv, CSV_HEADERS, csv_rows(results))
    return md, csv
