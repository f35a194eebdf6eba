"""`dimcollapse probe RUN_OR_CHECKPOINT`: linear probe and kNN on the frozen representation r.

Parses flags, then calls `dimcollapse.eval.target` (what to evaluate, on what data) and
`dimcollapse.eval.evaluate.Evaluator.probe`; writes probe.json with `runinfo.write_json`.
"""

from __future__ import annotations

import argparse
import sys

from dimcollapse.catalogue import MODEL_PREFIXES, PROBE_L2, PROBE_L2_GRID, PROBE_VAL_FRACTION
from dimcollapse.errors import UserError
from dimcollapse.eval_options import EvalOptions, add_eval_arguments, add_layer_arguments
from dimcollapse.progress import DEFAULT_INTERVAL_S

DESCRIPTION = """\
Frozen-backbone evaluation (the paper's Table 1 protocol on cached features): the train and
test splits go through the backbone once, without augmentation (features cached in
DIR/features/, reused while the checkpoint and data are unchanged); then a multinomial
logistic-regression probe on the train-standardised features, solved to convergence by L-BFGS
(top-1, top-5 on the test split), and a kNN classifier (cosine, k = 200, votes weighted
exp(s / 0.07)). --subvector D0 probes r[:, :D0] only (Appendix F).

RUN_OR_CHECKPOINT: a run folder of `dimcollapse train` (checkpoint_final.pt, else
checkpoint_last.pt), one of its checkpoints, an official DirectCLR checkpoint (per-epoch
checkpoint.pth or the final {backbone, head} file) or a torchvision ResNet state_dict. Our
checkpoints name their dataset; for the others pass --dataset and --data-dir.

With --layers, one probe (and one spectrum) per named layer of any model (a run or checkpoint,
torchvision:ARCH, timm:NAME, hub:REPO:ENTRY with --weights), in OUT/layers.{json,md,csv,png}
(default OUT: RUN/layers); see docs/layers.md."""

EPILOG = """\
examples:
  dimcollapse probe runs/dclr
  dimcollapse probe runs/dclr --subvector 90
  dimcollapse probe runs/dclr --layers default
  dimcollapse probe directclr_final.pth --backbone resnet50 --dataset imagefolder \\
      --data-dir /data/imagenet --out results/official
writes DIR/probe.json (DIR/probe_subvector<D0>.json with --subvector): accuracies in percent,
the probe's regularisation and convergence, kNN settings, feature provenance. See
docs/evaluation.md."""


def _sci(value: float) -> str:
    """1e-06 -> 1e-6: how the docs write the probe's l2 values."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "probe", help="linear probe (top-1/top-5) and kNN on a checkpoint's frozen features",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="RUN_OR_CHECKPOINT", help="run folder or checkpoint file")
    p.add_argument("--out", metavar="DIR", help="folder for probe.json (default: the run "
                   "folder, else the checkpoint's folder)")
    p.add_argument("--subvector", type=int, metavar="D0", help="probe r[:, :D0] only "
                   "(Appendix F: DirectCLR's directly optimised sub-vector)")
    g = p.add_argument_group("probe")
    g.add_argument("--l2", type=float, metavar="LAMBDA", help="L2 strength on the mean "
                   f"cross-entropy (sklearn C = 1/(LAMBDA N)); default {_sci(PROBE_L2)}")
    grid = ", ".join(_sci(v) for v in PROBE_L2_GRID)
    g.add_argument("--select-l2", action="store_true", help="pick the L2 strength from "
                   f"{grid} by top-1 on {round(100 * PROBE_VAL_FRACTION)}%% held-out train rows "
                   f"({len(PROBE_L2_GRID)} extra fits), then refit on all train rows")
    g.add_argument("--train-subset", type=int, metavar="N", help="fit the probe and kNN on a "
                   "class-balanced subset of N train images (default: all)")
    g.add_argument("--knn-k", type=int, metavar="K", help="neighbours (default 200)")
    g.add_argument("--knn-temperature", type=float, metavar="TAU", help="vote weight "
                   "exp(similarity / TAU) (default 0.07)")
    g.add_argument("--no-knn", action="store_true", help="skip the kNN classifier")

    add_eval_arguments(p)
    add_layer_arguments(p)
    p.add_argument("--quiet", action="store_true",
                   help="no progress (a bar on a terminal, plain lines every "
                   f"{DEFAULT_INTERVAL_S:g} s otherwise) "
                   "or result line")
    p.set_defaults(func=_run)


def _run(args) -> int:
    # torch (and runinfo's subprocess, tempfile, platform): kept out of --help
    from dimcollapse.eval.builder import build_evaluator
    from dimcollapse.eval.evaluate import probe_file
    from dimcollapse.runinfo import run_metadata, write_json

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"dimcollapse probe: {msg}", file=sys.stderr, flush=True)

    if args.layers is not None or args.target.startswith(MODEL_PREFIXES):
        return _run_layers(args, log)
    if args.weights is not None:
        raise UserError("--weights applies with --layers (a torchvision:/timm:/hub: model)")
    ev, out = build_evaluator(EvalOptions.from_args(args), args.target, out=args.out,
                              train_subset=args.train_subset, log=log)
    record = ev.probe(subvector=args.subvector, l2=args.l2, select=args.select_l2,
                      knn_k=args.knn_k, knn_temperature=args.knn_temperature,
                      knn=not args.no_knn)
    path = out / probe_file(args.subvector)
    write_json(path, {**record.to_dict(), "metadata": run_metadata()})
    if not args.quiet:
        lp, kn = record.linear_probe, record.knn
        what = "r" if args.subvector is None else f"r[:, :{args.subvector}]"
        knn = "" if kn is None else f"; kNN top-1 {kn.top1:.2f}%"
        conv = "" if lp.converged else f" (NOT converged: {lp.stop_reason})"
        print(f"{ev.target.checkpoint_path}: linear probe on {what} ({record.dim} dims): "
              f"top-1 {lp.top1:.2f}%, top-5 {lp.top5:.2f}% (l2 {lp.l2:g}, "
              f"{lp.iterations} iterations{conv}){knn} -> {path}")
    return 0


def _run_layers(args, log) -> int:
    # torch: kept out of --help
    from dimcollapse.eval.layer_run import parse_layers, result_lines, run_layers

    if args.subvector is not None:
        raise UserError("--subvector and --layers probe different things: drop one")
    if args.layers is None:
        raise UserError(f"{args.target}: pass --layers NAME,NAME,... (its named_modules() "
                        "names)")
    layers = None if args.layers == "default" else parse_layers(args.layers)
    results, paths = run_layers(args.target, layers, EvalOptions.from_args(args), out=args.out,
                                weights=args.weights, probe=True, l2=args.l2,
                                select_l2=args.select_l2, knn=not args.no_knn,
                                train_subset=args.train_subset, log=log)
    if not args.quiet:
        print("\n".join(result_lines(results, paths)))
    return 0
