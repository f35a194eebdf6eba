"""`dimcollapse explain gradient-rank RUN_OR_CHECKPOINT... --out DIR`: Fig 10's mechanism.

Parses flags, then calls `dimcollapse.explain.run_gradients.explain_gradient_rank`.
"""

from __future__ import annotations

import argparse

from dimcollapse.catalogue import GRADIENT_RANK_BATCH, GRADIENT_RANK_RTOL

DESCRIPTION = """\
Why the whole of r is meaningful in DirectCLR (Jing et al. 2022, Section 6, Fig 10). On one
batch of training views (the run's own views preset and image size, drawn with --seed), the
singular values of the contrastive loss's gradient with respect to r (2N x D: both views'
rows) and with respect to h, the input of layer4's last residual block (pooled over its
positions to 2N x C, and per position where the map is larger than 1x1). Model and views are
cast to float64 for this measurement; the rank counts singular values above --rtol x the
largest. The paper's claim: for DirectCLR, dL/dr has rank d0 exactly while dL/dh is full
rank. Several runs (e.g. DirectCLR, no projector, 2-layer projector; start and end of
training) go into one JSON and one figure with a panel each. See docs/explain.md."""

EPILOG = """\
examples:
  dimcollapse explain gradient-rank runs/dclr runs/none runs/mlp --out results/fig10
  dimcollapse explain gradient-rank runs/dclr runs/none runs/mlp --init --out results/fig10
      (--init: also each run's initial weights, the start of training)
writes DIR/gradient_rank.json (singular values, ranks) and DIR/gradient_rank.png."""


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="measure the paper's mechanisms on trained runs "
                       "(gradient-rank: Fig 10)", description="Measurements that explain "
                       "the paper's findings on trained models.")
    topics = p.add_subparsers(dest="topic", metavar="TOPIC", required=True)
    g = topics.add_parser("gradient-rank", help="rank of dL/dr and dL/dh (Fig 10)",
                          description=DESCRIPTION, epilog=EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("targets", nargs="+", metavar="RUN_OR_CHECKPOINT",
                   help="dimcollapse run folders or checkpoints (one panel each)")
    g.add_argument("--out", metavar="DIR", required=True,
                   help="folder for gradient_rank.json and gradient_rank.png")
    g.add_argument("--label", action="append", metavar="TEXT", help="panel title, once per "
                   "run in order (default: the projector and step)")
    g.add_argument("--batch-size", type=int, default=GRADIENT_RANK_BATCH, metavar="N",
                   help=f"images per view (default {GRADIENT_RANK_BATCH}; rows = 2N)")
    g.add_argument("--seed", type=int, default=0, help="seed of the batch and its views "
                   "(default 0; the same for every run)")
    g.add_argument("--rtol", type=_positive, default=GRADIENT_RANK_RTOL, metavar="REL",
                   help=f"rank = singular values > REL x the largest (default "
                   f"{GRADIENT_RANK_RTOL:g})")
    g.add_argument("--data-dir", metavar="DIR", help="the training set's folder (default: "
                   "the one in the run's config)")
    g.add_argument("--init", action="store_true", help="also measure each run's initial "
                   "weights (step 0: rebuilt from the run's seed, as training built them), a "
                   "panel before each run's")
    g.add_argument("--quiet", action="store_true", help="no result lines")
    g.set_defaults(func=_run)


def _run(args) -> int:
    import sys

    # torch is imported here, not at the top, so `dimcollapse --help` stays fast.
    from dimcollapse.explain.run_gradients import JSON_NAME, PNG_NAME, explain_gradient_rank

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"dimcollapse explain gradient-rank: {msg}", file=sys.stderr, flush=True)

    explain_gradient_rank(args.targets, args.out, labels=args.label,
                          batch_size=args.batch_size, seed=args.seed, rtol=args.rtol,
                          data_dir=args.data_dir, with_init=args.init, log=log)
    log(f"wrote {args.out}/{JSON_NAME} and {args.out}/{PNG_NAME}")
    return 0
