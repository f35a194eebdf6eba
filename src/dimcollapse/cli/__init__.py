"""The `dimcollapse` command line: parse, then call the library. Nothing imports this package.

Each subcommand lives in its own module here and exposes `add_parser(subparsers)`, which
registers the subcommand and sets `func` (called with the parsed namespace, returns an exit
status). Heavy imports (torch, matplotlib) happen inside `func`, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dimcollapse import __version__
from dimcollapse.errors import UserError

# Order is the order shown by `dimcollapse --help`.
SUBCOMMANDS = ["demo", "spectrum", "toy", "train", "probe", "compare", "reproduce"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dimcollapse",
        description="Measure, explain and prevent dimensional collapse in self-supervised "
        "learning (Jing et al., ICLR 2022). Run `dimcollapse COMMAND --help` for details.",
    )
    parser.add_argument("--version", action="version", version=f"dimcollapse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"dimcollapse.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"dimcollapse {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dimcollapse {args.command}: interrupted", file=sys.stderr)
        return 130
