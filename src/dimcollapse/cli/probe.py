"""`dimcollapse probe RUN_OR_CHECKPOINT`: linear probe and kNN on the frozen representation r.

Parses flags, then calls `dimcollapse.eval.target` (what to evaluate, on what data) and
`dimcollapse.eval.evaluate.Evaluator.probe`; writes probe.json with `runinfo.write_json`.
"""

from __future__ import annotations

import argparse

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
checkpoints name their dataset; for the others pass --dataset and --data-dir."""

EPILOG = """\
examples:
  dimcollapse probe runs/dclr
  dimcollapse probe runs/dclr --subvector 90
  dimcollapse probe directclr_final.pth --backbone resnet50 --dataset imagefolder \\
      --data-dir /data/imagenet --out results/official
writes DIR/probe.json (DIR/probe_subvector<D0>.json with --subvector): accuracies in percent,
the probe's regularisation and convergence, kNN settings, feature provenance. See
docs/evaluation.md."""


def add_eval_arguments(p: argparse.ArgumentParser, *, precision_flag: str = "--precision"
                       ) -> None:
    """Flags shared by probe, spectrum (checkpoint mode) and compare."""
    g = p.add_argument_group("checkpoint")
    g.add_argument("--backbone", choices=["resnet18", "resnet50"], help="architecture of a "
                   "file that does not say (official / torchvision files); checked otherwise")
    g.add_argument("--stem", choices=["imagenet", "cifar"], help="stem of the weights "
                   "(read from conv1; given, it is checked)")
    g.add_argument("--unsafe-load", action="store_true", help="allow torch.load("
                   "weights_only=False) for a trusted file that weights_only refuses")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["cifar10", "cifar100", "stl10", "imagefolder"],
                   help="labelled dataset (default: the one the run trained on)")
    g.add_argument("--data-dir", metavar="DIR", help="dataset root (default: the run's)")
    g.add_argument("--image-size", type=int, metavar="PIXELS", help="evaluation image side "
                   "(default: the run's; else 32 CIFAR, 96 STL-10, 224 ImageFolder)")
    g.add_argument("--cache-dir", metavar="DIR", help="decoded-image cache (default "
                   "$DIMCOLLAPSE_CACHE or ~/.cache/dimcollapse)")
    g.add_argument("--workers", type=int, default=0, metavar="N", help="decode processes "
                   "for streaming (imagefolder) datasets (default 0)")
    g = p.add_argument_group("features")
    g.add_argument("--features-dir", metavar="DIR", help="feature cache folder (default: "
                   "OUT/features)")
    g.add_argument("--no-feature-cache", action="store_true", help="extract features "
                   "without reading or writing the cache")
    g.add_argument(precision_flag, dest="feature_precision", choices=["auto", "bf16", "fp32"],
                   default="auto",
                   help="autocast dtype of the forward pass (auto: bf16 where the hardware has "
                   "it); features are stored as float32 (default auto)")
    g.add_argument("--batch-size", type=int, default=512, metavar="IMAGES",
                   help="images per forward pass (default 512)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: torch's; "
                   "1 is faster on a busy shared machine)")


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
                   "cross-entropy (sklearn C = 1/(LAMBDA N)); default 1e-2")
    g.add_argument("--select-l2", action="store_true", help="pick the L2 strength from "
                   "1e-4..1e-1 on 10%% held-out train rows (4 extra fits)")
    g.add_argument("--train-subset", type=int, metavar="N", help="fit the probe and kNN on a "
                   "class-balanced subset of N train images (default: all)")
    g.add_argument("--knn-k", type=int, metavar="K", help="neighbours (default 200)")
    g.add_argument("--knn-temperature", type=float, metavar="TAU", help="vote weight "
                   "exp(similarity / TAU) (default 0.07)")
    g.add_argument("--no-knn", action="store_true", help="skip the kNN classifier")
    add_eval_arguments(p)
    p.add_argument("--quiet", action="store_true",
                   help="no progress (a bar on a terminal, plain lines every 30 s otherwise) "
                   "or result line")
    p.set_defaults(func=_run)


def build_evaluator(args, path, *, out=None, train_subset=None, log=None):
    """(Evaluator, out folder) for the run/checkpoint `path`, from the flags of
    add_eval_arguments. out: results folder (default: the run folder, else the checkpoint's)."""
    from pathlib import Path

    import torch

    from dimcollapse.errors import UserError
    from dimcollapse.eval.evaluate import FEATURES_DIR, Evaluator, progress_enabled
    from dimcollapse.eval.target import data_spec, resolve_target

    if args.threads is not None:
        if args.threads < 1:
            raise UserError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    target = resolve_target(path, backbone=args.backbone, stem=args.stem,
                            allow_unsafe=args.unsafe_load)
    if log is not None and target.status_note():
        log(target.status_note())
    spec = data_spec(target, dataset=args.dataset, data_dir=args.data_dir,
                     image_size=args.image_size, cache_dir=args.cache_dir,
                     train_subset=train_subset, num_workers=args.workers)
    out = Path(out) if out else target.default_out
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: pass a folder")
    cache = None if args.no_feature_cache else Path(args.features_dir or out / FEATURES_DIR)
    ev = Evaluator(target, spec, cache_dir=cache, precision=args.feature_precision,
                   batch_size=args.batch_size, device=args.device,
                   progress=progress_enabled(args.quiet), log=log)
    return ev, out


def _run(args) -> int:
    import sys

    from dimcollapse.eval.evaluate import probe_file
    from dimcollapse.runinfo import run_metadata, write_json

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"dimcollapse probe: {msg}", file=sys.stderr, flush=True)

    ev, out = build_evaluator(args, args.target, out=args.out, train_subset=args.train_subset,
                              log=log)
    record = ev.probe(subvector=args.subvector, l2=args.l2, select=args.select_l2,
                      knn_k=args.knn_k, knn_temperature=args.knn_temperature,
                      knn=not args.no_knn)
    record["metadata"] = run_metadata()
    path = out / probe_file(args.subvector)
    write_json(path, record)
    if not args.quiet:
        lp, kn = record["linear_probe"], record["knn"]
        what = "r" if args.subvector is None else f"r[:, :{args.subvector}]"
        knn = "" if kn is None else f"; kNN top-1 {kn['top1']:.2f}%"
        conv = "" if lp["converged"] else f" (NOT converged: {lp['stop_reason']})"
        print(f"{ev.target.checkpoint_path}: linear probe on {what} ({record['dim']} dims): "
              f"top-1 {lp['top1']:.2f}%, top-5 {lp['top5']:.2f}% (l2 {lp['l2']:g}, "
              f"{lp['iterations']} iterations{conv}){knn} -> {path}")
    return 0
