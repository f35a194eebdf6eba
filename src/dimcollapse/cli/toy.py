"""`dimcollapse toy`: the paper's theory experiments (Fig 3, 5, 6, 11) and numeric checks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXPERIMENTS = ("strong-aug", "implicit-reg", "depth")


def _common(p: argparse.ArgumentParser, *, training: bool = True) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/toy"),
                   help="folder for the JSON and PNG files (default: runs/toy)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed; the same seed gives the same JSON, bit for bit")
    if not training:
        return
    p.add_argument("--steps", type=int, default=None,
                   help="SGD steps per run (default: 10000, the paper's)")
    p.add_argument("--loss", choices=("paper", "official"), default="paper",
                   help="paper: Eqn 2 (distance form, unnormalised, temperature 1; default); "
                   "official: the official code's cross_entropy(z1 z2^T / 0.1)")
    p.add_argument("--reduction", choices=("mean", "sum"), default="mean",
                   help="loss over the batch: mean (default; as cross_entropy, reproduces the "
                   "paper's Fig 3 at lr 0.001) or sum (Eqn 2 as written; = mean with lr x 128)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="training precision (default float32; measurements are float64)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--replot", action="store_true",
                   help="only redraw the PNGs from the JSON already in --out (no training)")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "toy", help="run the paper's theory experiments (Fig 3, 5, 6, 11) and checks",
        description="Linear toy models of Sections 4-5: strong augmentation (Fig 3), implicit "
        "regularisation (Fig 5/6), depth (Fig 11), numeric checks of the theory (verify), or "
        "all of them. Defaults are the paper's settings; each writes JSON + PNG into --out.")
    tsub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)

    s = tsub.add_parser("strong-aug", help="Fig 3: one linear layer, noise k on dims 8-15")
    _common(s)
    s.add_argument("--k", type=float, nargs="+", default=None, metavar="K",
                   help="noise amplitude(s) on dims 8-15 (default: 0 0.5 1 1.5 2 3)")
    s.add_argument("--lr", type=float, default=None, help="learning rate (default 0.001)")
    s.add_argument("--init", choices=("orthogonal", "spread", "default"), default=None,
                   help="orthogonal (default): random orthogonal W; default: nn.Linear's init")

    s = tsub.add_parser("implicit-reg", help="Fig 5/6: two linear layers, weak noise")
    _common(s)
    s.add_argument("--lr", type=float, nargs="+", default=None, metavar="LR",
                   help="learning rate(s), trained as one batch (default 0.01)")
    s.add_argument("--noise", type=float, default=None, help="noise amplitude (default 0.001)")
    s.add_argument("--init", choices=("spread", "orthogonal", "default"), default=None,
                   help="spread (default): singular values exp(-0.35 k), random orthogonal "
                   "factors")

    s = tsub.add_parser("depth", help="Fig 11: 1-4 layers, linear and ReLU")
    _common(s)
    s.add_argument("--depths", type=int, nargs="+", default=None, metavar="L",
                   help="numbers of layers (default: 1 2 3 4)")
    s.add_argument("--lr", type=float, default=None, help="learning rate (default 0.01)")
    s.add_argument("--noise", type=float, default=None, help="noise amplitude (default 0.001)")
    s.add_argument("--init", choices=("spread", "orthogonal", "default"), default=None,
                   help="same scheme at every depth (default: spread, as Fig 5/6)")

    s = tsub.add_parser("verify", help="numeric checks of Lemma 1-2, Theorems 1-3")
    s.add_argument("--out", type=Path, default=None, help="also write verify.json here")
    s.add_argument("--seed", type=int, default=0, help="random seed of the checks")
    s.add_argument("--json", action="store_true", help="print the checks as JSON")

    s = tsub.add_parser("all", help="strong-aug, implicit-reg, depth and verify")
    _common(s)
    p.set_defaults(func=_run)


def _given(args, **names) -> dict:
    """Config keyword arguments for the flags the user set (others keep paper defaults)."""
    out = {}
    for flag, key in names.items():
        v = getattr(args, flag, None)
        if v is not None:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def _common_kwargs(args) -> dict:
    kw = _given(args, steps="steps", dtype="dtype")
    kw.update(loss=args.loss, reduction=args.reduction, seed=args.seed)
    return kw


def _run(args) -> int:
    # torch: kept out of --help
    from dimcollapse.toy import outputs, readings
    from dimcollapse.toy.depth import DepthConfig
    from dimcollapse.toy.implicit_reg import ImplicitRegConfig
    from dimcollapse.toy.strong_aug import StrongAugConfig
    from dimcollapse.toy.verify import format_table

    if args.experiment == "verify":
        res = outputs.verify(args.seed, args.out)
        print(json.dumps({"checks": res["checks"]}, indent=2) if args.json
              else format_table(res["checks"]))
        return 0 if res["passed"] else 1

    todo = EXPERIMENTS if args.experiment == "all" else (args.experiment,)
    if args.replot:
        for name in todo:
            print(f"{name}: redrew {', '.join(str(f) for f in outputs.replot(name, args.out))}")
        return 0
    progress = not args.quiet
    common = _common_kwargs(args)
    for name in todo:
        if name == "strong-aug":
            sa = StrongAugConfig(**common, **_given(args, k="k_values", lr="lr", init="init"))
            files = outputs.strong_aug(sa, args.out, progress=progress)
            lines = readings.strong_aug_readings(json.loads(files[0].read_text()))
        elif name == "implicit-reg":
            ir = ImplicitRegConfig(**common, **_given(args, lr="lrs", noise="noise",
                                                      init="init"))
            files = outputs.implicit_reg(ir, args.out, progress=progress)
            lines = readings.implicit_reg_readings(json.loads(files[0].read_text()))
        else:
            dp = DepthConfig(**common, **_given(args, depths="depths", lr="lr", noise="noise",
                                                init="init"))
            files = outputs.depth(dp, args.out, progress=progress)
            lines = readings.depth_readings(json.loads(files[0].read_text()))
        print(f"{name}: wrote {', '.join(str(f) for f in files)}")
        for line in lines:
            print(f"  {line}")
        sys.stdout.flush()
    if args.experiment == "all":
        res = outputs.verify(args.seed, args.out)
        print(f"verify: wrote {args.out / 'verify.json'}")
        print(format_table(res["checks"]))
        return 0 if res["passed"] else 1
    return 0
