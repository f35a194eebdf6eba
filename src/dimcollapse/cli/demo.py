"""`dimcollapse demo`: the main job. Runs the theory experiments and writes report.md."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the theory experiments and checks, write DIR/report.md",
        description="Runs `dimcollapse toy all` with the paper's settings (Fig 3, 5, 6, 11 and "
        "the numeric checks; about half a minute on 2 CPU cores) into DIR/toy/, then writes "
        "DIR/report.md embedding every figure with a reading computed from the results. "
        "Exit status 1 when a numeric check fails.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"),
                   help="demo folder (default: runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--toy-steps", type=int, default=None, metavar="N",
                   help="SGD steps of each toy experiment (default: the paper's 10000)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from dimcollapse.errors import UserError
    from dimcollapse.report.demo_report import TOY_DIR, write_report
    from dimcollapse.toy.outputs import run_all

    if args.toy_steps is not None and args.toy_steps < 1:
        raise UserError("--toy-steps must be at least 1")

    def log(msg: str) -> None:
        print(f"demo: {msg}", file=sys.stderr, flush=True)

    res = run_all(args.out / TOY_DIR, seed=args.seed, steps=args.toy_steps,
                  progress=not args.quiet, log=log)
    report = write_report(args.out)
    print(f"demo: wrote {report} ({len(res['files'])} result files in {args.out / TOY_DIR})")
    if not res["verify_passed"]:
        print("demo: a numeric check of the theory FAILED (see the report)", file=sys.stderr)
        return 1
    return 0
