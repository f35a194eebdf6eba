"""`dimcollapse compare RUN_A RUN_B ... --out DIR`: a table and an overlay of several runs.

Parses flags; reads each run's probe.json and spectrum files, computes the missing ones with
`dimcollapse.eval.evaluate.Evaluator` (unless --no-compute), and writes them with
`dimcollapse.report.compare_report.write_compare`.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from dimcollapse.errors import UserError
from dimcollapse.eval_options import EvalOptions, add_eval_arguments

DESCRIPTION = """\
Compares runs side by side: one figure overlaying their representation spectra (the paper's
Fig 7b / 9) and a table (compare.md, compare.csv, compare.json) of their linear-probe and kNN
accuracy and collapse metrics (RankMe of r, collapsed dims of r and of z). Each run's numbers
come from the files `dimcollapse probe` and `dimcollapse spectrum` write into its folder;
missing ones are computed first (and saved there) unless --no-compute, which instead lists the
commands to run."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="table and spectrum overlay of several runs (Fig 7b / 9)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  dimcollapse compare runs/mlp runs/none runs/dclr --out runs/cmp")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders or checkpoint files")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for compare.* files")
    p.add_argument("--labels", metavar="A,B,...", help="row/curve labels (default: the run "
                   "folder names)")
    p.add_argument("--no-compute", action="store_true", help="only read existing files; "
                   "list the commands for missing ones and exit 2")
    p.add_argument("--select-l2", action="store_true", help="when a probe is computed, pick "
                   "its L2 strength on held-out train rows (as `probe --select-l2`)")
    p.add_argument("--title", help="figure title")
    add_eval_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress or result lines")
    p.set_defaults(func=_run)


def _labels(args) -> list[str]:
    # torch: kept out of --help
    from dimcollapse.eval.target import RUN_CHECKPOINTS

    if args.labels is None:
        # the shortest unique tail of each path; "seed<k>" alone says too little
        parts = [Path(r).resolve().parts for r in args.runs]
        parts = [p[:-1] if p and p[-1] in RUN_CHECKPOINTS else p for p in parts]
        for n in range(1, max(len(p) for p in parts) + 1):
            names = ["/".join(p[-n:]) for p in parts]
            if len(set(names)) == len(names) and not any(
                    re.fullmatch(r"seed\d+", x) for x in names):
                return names
        return [str(r) for r in args.runs]
    labels = [s.strip() for s in args.labels.split(",")]
    if len(labels) != len(args.runs):
        raise UserError(f"--labels has {len(labels)} names for {len(args.runs)} runs: pass one "
                        "per run")
    return labels


def _missing(files: dict, run) -> list[str]:
    """Files absent, or computed from another checkpoint than the run's current one (a probe
    of checkpoint_last.pt before the run finished)."""
    # torch: kept out of --help
    from dimcollapse.eval.target import RUN_CHECKPOINTS

    p = Path(run)
    current = next((n for n in RUN_CHECKPOINTS if (p / n).is_file()), None) if p.is_dir() \
        else p.name

    def source(rec: dict) -> str | None:
        ck = rec.get("checkpoint") or (rec.get("source") or {}).get("checkpoint") or {}
        return Path(ck["path"]).name if ck.get("path") else None

    return [k for k in ("probe", "spectrum_r", "spectrum_z") if files[k] is None
            or (current is not None and source(files[k]) not in (None, current))]


def _run(args) -> int:
    # numpy, torch (and runinfo's subprocess, tempfile, platform): kept out of --help
    import numpy as np

    from dimcollapse.eval.builder import build_evaluator
    from dimcollapse.eval.evaluate import probe_file, spectrum_dir
    from dimcollapse.report.compare_report import read_run, row_of, write_compare
    from dimcollapse.report.spectrum_plot import write_spectrum_report
    from dimcollapse.runinfo import run_metadata, write_json

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"dimcollapse compare: {msg}", file=sys.stderr, flush=True)

    labels = _labels(args)
    rows, spectra, todo = [], {}, []
    for label, run in zip(labels, args.runs, strict=True):
        p = Path(run)
        files = read_run(p if p.is_dir() else p.parent)  # where `probe`/`spectrum` write
        missing = _missing(files, run)
        if missing and args.no_compute:
            cmds = {"probe": f"dimcollapse probe {run}",
                    "spectrum_r": f"dimcollapse spectrum {run} --space representation",
                    "spectrum_z": f"dimcollapse spectrum {run} --space embedding"}
            todo += [cmds[m] for m in missing if m != "spectrum_z"]
        elif missing:
            def run_log(m: str, label: str = label) -> None:
                log(f"{label}: {m}")

            ev, out = build_evaluator(EvalOptions.from_args(args), run, log=run_log)
            meta = run_metadata()
            if "probe" in missing:
                rec = ev.probe(select=args.select_l2)
                write_json(out / probe_file(None), {**rec.to_dict(), "metadata": meta})
            for key, space in (("spectrum_r", "representation"), ("spectrum_z", "embedding")):
                if key in missing and (space == "representation"
                                       or ev.target.loaded.source == "dimcollapse"):
                    write_spectrum_report(ev.spectrum(space), out / spectrum_dir(space),
                                          metadata=meta, title=f"{label} ({space})")
            files = read_run(out)
        rows.append(row_of(label, files))
        r = files["spectrum_r"]
        spectra[label] = None if r is None else np.asarray(r["eigenvalues"])
    if todo:
        raise UserError("missing results; run first: " + "; ".join(todo))
    paths = write_compare(rows, spectra, args.out, metadata=run_metadata(), title=args.title)
    if not args.quiet:
        for r in rows:
            top1 = "n/a" if r["top1"] is None else f"{r['top1']:.2f}%"
            run = "" if r["run_status"] in (None, "complete") else f" (run {r['run_status']})"
            print(f"{r['label']}: top-1 {top1}, collapsed dims r {r['collapsed_dims_r']}, "
                  f"z {r['collapsed_dims_z']}{run}")
        print("wrote " + ", ".join(str(v) for v in paths.values()))
    return 0
