"""`dimcollapse spectrum EMB --out DIR`: embedding spectrum (Eqn 1) and collapse metrics of a file.

Parses flags, then calls `dimcollapse.spectrum.spectrum_of_file` (streaming, O(d^2) memory),
`SpectrumAccumulator.summary` and `dimcollapse.report.spectrum_plot.write_spectrum_report`.
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Eigenvalues of the covariance of the N x d embeddings in EMB (Jing et al. 2022, Eqn 1), read
chunk by chunk (memory O(d^2), whatever N), with RankMe, alpha-ReQ, the number of collapsed
dimensions and the per-dimension std of L2-normalised embeddings. Writes DIR/spectrum.json and
DIR/spectrum.png (log sigma_k against k, as the paper's Fig 2). See docs/spectrum.md."""


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


def add_parser(sub) -> None:
    p = sub.add_parser(
        "spectrum", help="embedding spectrum and collapse metrics of an N x d .npy/.pt file",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("emb", metavar="EMB", help="N x d embeddings: .npy (read in chunks, never "
                   "loaded whole) or .pt (a tensor saved with torch.save)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="folder for spectrum.json and spectrum.png (created if missing)")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar or result line")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from dimcollapse.report.spectrum_plot import write_spectrum_report
    from dimcollapse.runinfo import run_metadata
    from dimcollapse.spectrum import open_embeddings, spectrum_of_file

    ef = open_embeddings(args.emb)
    acc = spectrum_of_file(ef, normalize=args.normalize, center=args.center,
                           precision=args.precision, raw_max_samples=args.raw_samples,
                           chunk_rows=args.chunk_rows,
                           progress=not args.quiet and sys.stderr.isatty())
    summary = acc.summary(ddof=args.ddof, rel_threshold=args.threshold)
    summary["source"] = ef.describe()
    title = args.title or f"Embedding spectrum of {ef.path.name}"
    json_path, png_path = write_spectrum_report(summary, args.out, metadata=run_metadata(),
                                                title=title)
    if not args.quiet:
        print(_result_line(summary, ef.path.name, json_path, png_path))
    return 0


def _result_line(s: dict, name: str, json_path, png_path) -> str:
    rankme = "n/a" if s["rankme"] is None else f"{s['rankme']:.1f}"
    if s["alpha_req"] is None:
        alpha = "n/a"
    else:
        r2 = "n/a" if s["alpha_req_r2"] is None else f"{s['alpha_req_r2']:.3f}"
        alpha = f"{s['alpha_req']:.3f} (R^2 {r2})"
    return (f"{name}: N={s['n']}, d={s['dim']}, "
            f"{'L2-normalised' if s['normalize'] else 'raw'}: {s['collapsed_dims']} of "
            f"{s['dim']} dims collapsed (< {s['threshold']:g} x max), RankMe {rankme}, "
            f"alpha-ReQ {alpha} -> {json_path}, {png_path}")
