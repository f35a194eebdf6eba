"""`dimcollapse spectrum EMB --out DIR` and `dimcollapse spectrum RUN_OR_CHECKPOINT --space S`.

Embeddings file: parses flags, then calls `dimcollapse.spectrum.spectrum_of_file` (streaming,
O(d^2) memory), `SpectrumAccumulator.summary` and
`dimcollapse.report.spectrum_plot.write_spectrum_report`. Run folder or checkpoint: the features
of the test split (r, or z = projector(r)) come from `dimcollapse.eval.evaluate.Evaluator`
(extracted once, cached) and go through the same summary and writer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dimcollapse import catalogue
from dimcollapse.errors import UserError
from dimcollapse.eval_options import EvalOptions, add_eval_arguments, add_layer_arguments

DESCRIPTION = """\
Eigenvalues of the covariance of the N x d embeddings in EMB (Jing et al. 2022, Eqn 1), read
chunk by chunk (memory O(d^2), whatever N), with RankMe, alpha-ReQ, the number of collapsed
dimensions, the per-dimension std of L2-normalised embeddings, the effective rank, NESum and
the collapse verdict (complete | dimensional | none). Writes DIR/spectrum.json and
DIR/spectrum.png (log sigma_k against k, as the paper's Fig 2). See docs/spectrum.md.

Given a run folder or a checkpoint instead (ours, an official DirectCLR file or a torchvision
state_dict), the rows are the test split's representations r = backbone(x) (--space
representation, the paper's Fig 7b / 9) or embeddings z = projector(r) (--space embedding,
Fig 2; our checkpoints only), extracted without augmentation and cached in OUT/features/;
the output goes to RUN/spectrum_<space>/ unless --out is given. --lidar-views Q adds LiDAR
(Thilak et al. 2024) of the same space from Q training views of each of --lidar-samples test
images, in OUT/lidar.json.

With --layers, MODEL may be any network (a run or checkpoint, torchvision:ARCH, timm:NAME,
hub:REPO:ENTRY, with --weights): one spectrum per named layer on the held-out split, an
overlay figure (log sigma_k against k/d, one line per layer) and a table, in
OUT/layers.{json,md,csv,png} (default OUT: RUN/layers). See docs/layers.md."""

EPILOG = """\
examples:
  dimcollapse spectrum emb.npy --out results/emb
  dimcollapse spectrum runs/mlp --space embedding
  dimcollapse spectrum runs/mlp --layers default
  dimcollapse spectrum torchvision:resnet50 --weights resnet50.safetensors \\
      --layers layer1,layer2,layer3,layer4,avgpool --data-dir /data/imagenet --out out/r50"""


def _raw_samples(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of rows or 'all', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _rel_threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {value}")
    return value


def _raw_seed(text: str) -> int:
    value = _raw_samples(text)
    if value is None:
        raise argparse.ArgumentTypeError("expected a seed >= 0, got 'all'")
    return value


def _lidar_views(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"LiDAR needs at least 2 views per sample, got {value}")
    return value


def _lidar_samples(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"LiDAR needs at least 2 samples, got {value}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "spectrum", help="embedding spectrum and collapse metrics of an N x d .npy/.pt file",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("emb", metavar="EMB|RUN_OR_CHECKPOINT|MODEL", help="N x d embeddings: .npy "
                   "(read in chunks, never loaded whole) or .pt (a tensor saved with "
                   "torch.save); or a run folder / checkpoint file; or, with --layers, a "
                   "torchvision:/timm:/hub: model")
    p.add_argument("--out", metavar="DIR",
                   help="folder for spectrum.json and spectrum.png (created if missing; "
                   "required for an embeddings file; default for a run: RUN/spectrum_<space>)")
    p.add_argument("--space", choices=["representation", "embedding"],
                   help="run/checkpoint only: r (backbone output) or z (projector output) "
                   "on the test split (default: representation)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=True,
                   help="L2-normalise each embedding before the covariance, as the official "
                   "image code (default: normalize)")
    p.add_argument("--center", action=argparse.BooleanOptionalAction, default=True,
                   help="subtract the mean, as Eqn 1 (default: center)")
    p.add_argument("--ddof", type=int, choices=(0, 1), default=0,
                   help="divide by N - ddof: 0 as Eqn 1 (default), 1 as the official np.cov")
    p.add_argument("--precision", choices=("float64", "float32"), default="float64",
                   help="dtype of the per-chunk products, summed in float64 either way; float32 "
                   "is ~2x faster with error ~1e-7 of the largest eigenvalue (default: float64)")
    p.add_argument("--threshold", type=_rel_threshold, default=1e-4, metavar="REL",
                   help="a dimension is collapsed when its eigenvalue is below REL x the largest "
                   "(default: 1e-4)")
    p.add_argument("--raw-samples", type=_raw_samples, default=25_600, metavar="N|all",
                   help="first rows whose raw (unnormalised) values feed RankMe and alpha-ReQ; "
                   "0 skips both (default: 25600, the RankMe authors' sample count)")
    p.add_argument("--chunk-rows", type=_positive_int, default=None, metavar="ROWS",
                   help="rows read per chunk (default: ~16M values, 8192 rows at d = 2048)")
    p.add_argument("--title", default=None, help="figure title (default: the file name)")
    p.add_argument("--lidar-views", type=_lidar_views, default=None, metavar="Q",
                   help="run/checkpoint only: also LiDAR (Thilak et al. 2024) of --space from Q "
                   "training views of each of --lidar-samples test images, written to "
                   "OUT/lidar.json (default: off)")
    p.add_argument("--lidar-samples", type=_lidar_samples, default=catalogue.LIDAR_SAMPLES,
                   metavar="N", help="test images LiDAR uses (at most the split's size; "
                   f"default: {catalogue.LIDAR_SAMPLES})")
    p.add_argument("--lidar-seed", type=_raw_seed, default=catalogue.LIDAR_SEED, metavar="SEED",
                   help=f"seed of the LiDAR samples and views (default: {catalogue.LIDAR_SEED})")
    p.add_argument("--quiet", action="store_true", help="no progress bar or result line")

    add_eval_arguments(p, precision_flag="--feature-precision")
    add_layer_arguments(p)
    p.set_defaults(func=_run)


def _is_checkpoint(path: str) -> bool:
    """A folder, or a .pt/.pth file that holds something other than one tensor."""
    p = Path(path)
    if p.is_dir():
        return True
    if not p.is_file() or p.suffix.lower() not in (".pt", ".pth"):
        return False
    # torch: kept out of --help
    import torch

    try:
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # an old (non-zip) file format cannot be memory-mapped
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - refused by weights_only: not a plain tensor file
            return True
    except Exception:  # noqa: BLE001
        return True
    return not isinstance(obj, torch.Tensor)


def _run(args) -> int:
    # numpy, torch (and runinfo's subprocess, tempfile, platform): kept out of --help
    from dimcollapse.report.spectrum_plot import write_spectrum_report
    from dimcollapse.runinfo import run_metadata
    from dimcollapse.spectrum import open_embeddings, spectrum_of_file

    if args.layers is not None or args.emb.startswith(catalogue.MODEL_PREFIXES):
        return _run_layers(args)
    if args.weights is not None:
        raise UserError("--weights applies with --layers (a torchvision:/timm:/hub: model)")
    if _is_checkpoint(args.emb):
        return _run_checkpoint(args)
    if args.lidar_views is not None:
        raise UserError(f"--lidar-views needs images to augment; {args.emb} is an embeddings "
                        "file: pass a run folder or checkpoint, or drop --lidar-views")
    if args.space is not None:
        raise UserError(f"--space applies to a run folder or checkpoint; {args.emb} is an "
                        "embeddings file: drop --space")
    if args.out is None:
        raise UserError("--out DIR is required for an embeddings file")
    ef = open_embeddings(args.emb)
    acc = spectrum_of_file(ef, normalize=args.normalize, center=args.center,
                           precision=args.precision, raw_max_samples=args.raw_samples,
                           chunk_rows=args.chunk_rows,
                           progress=not args.quiet and sys.stderr.isatty())
    summary = acc.summary(ddof=args.ddof, rel_threshold=args.threshold).with_source(
        ef.describe())
    title = args.title or f"Embedding spectrum of {ef.path.name}"
    json_path, png_path = write_spectrum_report(summary, args.out, metadata=run_metadata(),
                                                title=title)
    if not args.quiet:
        print(_result_line(summary, ef.path.name, json_path, png_path))
    return 0


def _run_layers(args) -> int:
    # torch: kept out of --help
    from dimcollapse.eval.layer_run import parse_layers, result_lines, run_layers

    for flag, value in (("--space", args.space), ("--lidar-views", args.lidar_views)):
        if value is not None:
            raise UserError(f"{flag} and --layers measure different things: drop {flag}")
    if args.layers is None:
        raise UserError(f"{args.emb}: pass --layers NAME,NAME,... (its named_modules() names)")

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"dimcollapse spectrum: {msg}", file=sys.stderr, flush=True)

    layers = None if args.layers == "default" else parse_layers(args.layers)
    results, paths = run_layers(
        args.emb, layers, EvalOptions.from_args(args), out=args.out, weights=args.weights,
        spectrum_args={"normalize": args.normalize, "center": args.center, "ddof": args.ddof,
                       "threshold": args.threshold, "raw_samples": args.raw_samples},
        log=log)
    if not args.quiet:
        print("\n".join(result_lines(results, paths)))
    return 0


def _run_checkpoint(args) -> int:
    # numpy, torch (and runinfo's subprocess, tempfile, platform): kept out of --help
    from dimcollapse.eval.builder import build_evaluator
    from dimcollapse.eval.evaluate import spectrum_dir
    from dimcollapse.report.spectrum_plot import write_spectrum_report
    from dimcollapse.runinfo import run_metadata

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"dimcollapse spectrum: {msg}", file=sys.stderr, flush=True)

    space = args.space or "representation"
    ev, base = build_evaluator(EvalOptions.from_args(args), args.emb, log=log)
    out = Path(args.out) if args.out else base / spectrum_dir(space)
    summary = ev.spectrum(space, normalize=args.normalize, center=args.center, ddof=args.ddof,
                          threshold=args.threshold, raw_samples=args.raw_samples,
                          precision=args.precision)
    name = ev.target.run_dir.name if ev.target.run_dir else ev.target.checkpoint_path.name
    what = "Representation (r)" if space == "representation" else "Embedding (z)"
    title = args.title or f"{what} spectrum of {name}, {ev.data.dataset} test split"
    json_path, png_path = write_spectrum_report(summary, out, metadata=run_metadata(),
                                                title=title)
    lidar = None
    if args.lidar_views is not None:
        from dimcollapse.eval.lidar_views import LIDAR_FILE, lidar_of_target
        from dimcollapse.runinfo import write_json

        log(f"LiDAR: {args.lidar_views} views of up to {args.lidar_samples} test images")
        lidar = lidar_of_target(ev, space=space, q=args.lidar_views, samples=args.lidar_samples,
                                seed=args.lidar_seed)
        write_json(out / LIDAR_FILE, {**lidar.to_dict(), "metadata": run_metadata()})
    if not args.quiet:
        print(_result_line(summary, f"{name} ({space})", json_path, png_path, lidar))
    return 0


def _result_line(s, name: str, json_path, png_path, lidar=None) -> str:
    """One line from a `SpectrumSummary` (and the LiDAR record, when measured)."""
    rankme = "n/a" if s.rankme is None else f"{s.rankme:.1f}"
    if s.alpha_req is None:
        alpha = "n/a"
    else:
        r2 = "n/a" if s.alpha_req_r2 is None else f"{s.alpha_req_r2:.3f}"
        alpha = f"{s.alpha_req:.3f} (R^2 {r2})"
    if s.unmeasured_dims:
        counted = (f"{s.collapsed_dims} of the {s.max_rank} dims {s.n} rows can span collapsed "
                   f"(< {s.threshold:g} x max; the other {s.unmeasured_dims} are unmeasured, "
                   f"not collapsed: pass more than {s.dim} rows to measure all {s.dim})")
    else:
        counted = f"{s.collapsed_dims} of {s.dim} dims collapsed (< {s.threshold:g} x max)"
    lidar = "" if lidar is None else f", LiDAR {lidar.lidar:.1f} (q={lidar.q})"
    erank = "n/a" if s.effective_rank is None else f"{s.effective_rank:.1f}"
    return (f"{name}: N={s.n}, d={s.dim}, "
            f"{'L2-normalised' if s.normalize else 'raw'}: {counted}, RankMe {rankme}, "
            f"alpha-ReQ {alpha}, effective rank {erank}, collapse: {s.collapse}{lidar} "
            f"-> {json_path}, {png_path}")
