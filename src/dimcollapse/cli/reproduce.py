"""`dimcollapse reproduce {table1,table2,d0-sweep,all,collapse-factors}`: one budget per target.

Parses flags into a `reproduce.Budget` and calls `reproduce.run_reproduction` (the tables) or
`reproduce.factors_pipeline.run_collapse_factors` (collapse-factors).
"""

from __future__ import annotations

import argparse
import sys

from dimcollapse.catalogue import (
    COLLAPSE_FACTOR_ARMS,
    COLLAPSE_FACTORS,
    COLLAPSE_FACTORS_CPU_STEPS,
    EVAL_PRECISIONS,
)
from dimcollapse.errors import UserError
from dimcollapse.progress import DEFAULT_INTERVAL_S

DESCRIPTION = """\
Trains every arm of the paper's Table 1 (SimCLR 2-layer, 1-layer, no projector, DirectCLR),
Table 2 (orthogonal, diagonal, low-rank, low-rank diagonal, random sub-vector, with the
no-projector and linear references) or the d0 sweep of Fig 12 (DirectCLR over a grid of d0
scaled to the representation: 16 ... 512 for ResNet-18), for every seed, under one identical
budget; then probes each (linear probe + kNN on r, and DirectCLR's r[:, :d0]) and measures the
spectra of r and z on the test split. Writes DIR/results.json, DIR/results.md, DIR/results.csv
and the figures (representation spectra: Fig 7b/9; the 2-layer projector's embedding
spectrum: Fig 2; top-1 against d0: Fig 12). Each arm x seed is a run folder
DIR/runs/<arm>/seed<k>; completed ones are reused when the command is rerun, an interrupted one
resumes from its checkpoint.

collapse-factors varies one factor at a time away from the preset ({factors}) and trains
the arms {arms} at each setting (the baseline once, shared by every factor); it reports the
eigenvalues of r below 1e-3 / 1e-4 / 1e-5 of the largest, RankMe and top-1 per setting and arm,
one spectrum figure per factor, and an fp32-vs-bf16 check of the measurement's noise floor
(docs/reproduce.md lists the values). Its default schedule on the cpu preset is
{steps} steps per run (about 100 min on 2 cores in all)."""

EPILOG = """\
presets (the training presets of `dimcollapse train`, see its --help):
  cpu       CIFAR-10, ResNet-18 (imagenet stem), 32 px, SGD, batch 256, 900 steps: table1 with
            2 seeds in about an hour on a 2-core CPU
  cifar     CIFAR-10, ResNet-18 (cifar stem), LARS, batch 512, 800 epochs (one GPU)
  imagenet  the paper's recipe: ImageNet (--data-dir), ResNet-50, LARS, batch 4096, 100 epochs

examples:
  dimcollapse reproduce table1 --preset cpu --seeds 2 --out results/cifar10-cpu
  dimcollapse reproduce d0-sweep --preset cpu --seeds 1 --out results/cifar10-cpu-d0
  dimcollapse reproduce table1 --preset cpu --seeds 2 --max-steps 2400 --train-subset 10000 \\
      --out results/cifar10-cpu-long
  dimcollapse reproduce all --preset cifar --seeds 3 --epochs 200 --out results/cifar10-gpu
  dimcollapse reproduce collapse-factors --preset cpu --out results/cifar10-cpu/collapse-factors
  dimcollapse reproduce collapse-factors --preset cifar --epochs 100 --out results/cf-gpu

CIFAR-10 is looked up in --data-dir, $DIMCOLLAPSE_DATA(/cifar10), then ../shared/datasets/cifar10
(relative to the current folder and to the repository)."""


def _target(text: str) -> str:
    tables = ("table1", "table2", "d0-sweep")
    if text in (*tables, "all", "collapse-factors"):
        return text
    names = text.split(",")
    if len(names) > 1 and all(n in tables for n in names) and len(set(names)) == len(names):
        return text
    raise argparse.ArgumentTypeError(
        f"invalid target {text!r}: choose table1, table2, d0-sweep, all or collapse-factors, "
        "or tables joined by commas (table1,table2)")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="train, probe and measure every arm of Table 1, Table 2, the d0 "
        "sweep or the collapse factors under one budget",
        description=DESCRIPTION.format(factors=", ".join(COLLAPSE_FACTORS),
                                       arms=" and ".join(COLLAPSE_FACTOR_ARMS),
                                       steps=COLLAPSE_FACTORS_CPU_STEPS), epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", type=_target, metavar="{table1,table2,d0-sweep,all,"
                   "collapse-factors}", help="which arms to run; tables can be combined with "
                   "commas (table1,table2: one results.json with both tables, their common "
                   "arms run once)")
    p.add_argument("--preset", choices=["cpu", "cifar", "imagenet"], default="cpu",
                   help="training recipe shared by every arm (default %(default)s)")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="seeds 0..N-1 for every arm (default 2; collapse-factors 1)")
    p.add_argument("--out", required=True, metavar="DIR", help="results folder (reused on "
                   "rerun)")
    p.add_argument("--data-dir", metavar="DIR", help="dataset root (cpu/cifar: CIFAR-10, "
                   "found automatically when omitted; imagenet: required)")
    g = p.add_argument_group("budget (applies to every arm; default: the preset's)")
    length = g.add_mutually_exclusive_group()
    length.add_argument("--max-steps", type=int, metavar="STEPS", help="schedule length in "
                        "optimizer steps (cpu preset: 900; collapse-factors on cpu: "
                        f"{COLLAPSE_FACTORS_CPU_STEPS})")
    length.add_argument("--epochs", type=int, help="schedule length in epochs of the "
                        "training set (cifar: 800, imagenet: 100)")
    g.add_argument("--train-subset", type=int, metavar="N", help="pretrain on a fixed "
                   "class-balanced subset of N images (more epochs per step budget); the probe "
                   "still uses the whole train split")
    g.add_argument("--image-size", type=int, metavar="PIXELS", help="train and evaluate at "
                   "this image side (fewer pixels, faster steps)")
    g.add_argument("--batch-size", type=int, metavar="PAIRS", help="global batch")
    g.add_argument("--d0", type=int, help="d0 of DirectCLR and the low-rank arms (default: "
                   "the paper's 360/2048 of the representation: 90 for ResNet-18)")
    g.add_argument("--d0-grid", metavar="D0,D0,...", help="d0 values of the sweep (default: "
                   "1/32, 1/16, 1/8, 360/2048, 1/4, 1/2, 3/4, 1 of the representation)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any training config field for every arm, e.g. --set optim.lr=0.1 "
                   "(repeatable; VALUE is JSON)")
    g = p.add_argument_group("collapse-factors")
    g.add_argument("--factors", metavar="NAME,...", help="vary only these factors (default: "
                   f"all of {', '.join(COLLAPSE_FACTORS)})")
    g.add_argument("--no-precision-check", action="store_true", help="skip the fp32 vs bf16 "
                   "feature extraction of the baseline's no-projector arm")
    g = p.add_argument_group("evaluation and machine")
    g.add_argument("--no-select-l2", action="store_true", help="probe with the default l2 "
                   "instead of choosing it on held-out train rows")
    g.add_argument("--probe-subset", type=int, metavar="N", help="fit the probe and kNN on "
                   "a class-balanced subset of N train images (default: the whole train split)")
    g.add_argument("--eval-precision", choices=EVAL_PRECISIONS, default="auto",
                   help="feature extraction autocast (default auto: bf16 where supported)")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: torch's; "
                   "not part of the results' identity)")
    g.add_argument("--cache-dir", metavar="DIR", help="decoded-image cache")
    g.add_argument("--keep-features", action="store_true", help="keep each run's feature "
                   "cache (~125 MB per CIFAR run) after it is evaluated")
    p.add_argument("--replot", action="store_true",
                   help="only redraw every figure of --out (results.json, each run's "
                   "spectrum.json) without training or evaluating")
    p.add_argument("--quiet", action="store_true",
                   help="no progress (bars on a terminal, plain lines every "
                   f"{DEFAULT_INTERVAL_S:g} s otherwise) "
                   "or per-arm lines")
    p.set_defaults(func=_run)


def _grid(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UserError(f"--d0-grid {text!r}: pass comma-separated integers, e.g. "
                        "16,32,64,90") from None
    if not values:
        raise UserError("--d0-grid is empty: pass comma-separated integers")
    return values


def _run(args) -> int:
    # numpy: kept out of --help
    from dimcollapse.reproduce import (
        Budget,
        ReproductionInterrupted,
        find_dataset,
        how_to_get,
        parse_set,
        run_reproduction,
    )
    from dimcollapse.reproduce.budget import DATASETS

    if args.replot and args.target == "collapse-factors":
        import json
        from pathlib import Path

        from dimcollapse.report.factors_report import draw_factor_spectra

        path = Path(args.out) / "results.json"
        if not path.is_file():
            raise UserError(f"--replot: no {path}: run the target first")
        figures = draw_factor_spectra(json.loads(path.read_text()), args.out)
        print(f"dimcollapse reproduce: redrew {len(figures)} figures in {args.out}",
              file=sys.stderr)
        return 0
    if args.replot:  # figures from the JSON already in --out; nothing is trained
        # matplotlib: only when figures are redrawn
        from dimcollapse.report.reproduce_figures import replot

        paths = replot(args.out)
        print(f"dimcollapse reproduce: redrew {len(paths)} figures in {args.out}",
              file=sys.stderr)
        return 0
    factors = args.target == "collapse-factors"
    seeds = args.seeds if args.seeds is not None else (1 if factors else 2)
    if seeds < 1:
        raise UserError("--seeds must be at least 1")
    max_steps = args.max_steps
    if factors and max_steps is None and args.epochs is None and args.preset == "cpu":
        max_steps = COLLAPSE_FACTORS_CPU_STEPS  # docs/reproduce.md: the ~100-minute budget
    dataset = DATASETS[args.preset]
    if dataset == "imagefolder":
        if args.data_dir is None:
            raise UserError("--preset imagenet needs --data-dir (an ImageFolder tree with "
                            "train/ and val/ or test/)")
        data_dir = args.data_dir
    else:
        found = find_dataset(dataset, args.data_dir)
        if found is None:
            raise UserError(f"no {dataset} found: {how_to_get(dataset)}")
        data_dir = str(found)
    budget = Budget(args.preset, data_dir, max_steps=max_steps, epochs=args.epochs,
                    train_subset=args.train_subset, image_size=args.image_size,
                    batch_size=args.batch_size, threads=args.threads, cache_dir=args.cache_dir,
                    extra=parse_set(args.set), select_l2=not args.no_select_l2,
                    probe_subset=args.probe_subset,
                    eval_precision=args.eval_precision)

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"dimcollapse reproduce: {msg}", file=sys.stderr, flush=True)

    try:
        if factors:
            from dimcollapse.reproduce.factors import FACTORS
            from dimcollapse.reproduce.factors_pipeline import run_collapse_factors

            grid = None
            if args.factors is not None:
                names = [n for n in args.factors.replace(" ", "").split(",") if n]
                unknown = [n for n in names if n not in FACTORS]
                if unknown or not names:
                    raise UserError(f"--factors {args.factors!r}: unknown {unknown or 'empty'};"
                                    f" choose from {', '.join(FACTORS)}")
                grid = {n: FACTORS[n].values for n in names}
            run_collapse_factors(budget, seeds=list(range(seeds)), out_dir=args.out, grid=grid,
                                 precision_check=not args.no_precision_check,
                                 keep_features=args.keep_features, progress=not args.quiet,
                                 quiet=args.quiet, log=log)
            return 0
        run_reproduction(args.target, budget, seeds=list(range(seeds)), out_dir=args.out,
                         d0=args.d0, d0_grid=_grid(args.d0_grid), keep_features=args.keep_features,
                         progress=not args.quiet, quiet=args.quiet,
                         log=log)
    except ReproductionInterrupted as err:
        print(f"dimcollapse reproduce: {err}", file=sys.stderr)
        return 128 + int(err.signum or 2)
    return 0
