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
SUBCOMMANDS = ["demo", "spectrum", "toy", "train", "probe", "compare", "reproduce", "explain"]


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line with a pointer to `--help` (exit 2).

    argparse's default prints the whole usage block before the message; the README promises
    one line for bad input. Subparsers inherit the class (`add_subparsers` uses the parent's
    type as `parser_class`), so every subcommand and sub-subcommand behaves the same.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand whose flags these are not, as its own errors do
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"dimcollapse {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dimcollapse {args.command}: interrupted", file=sys.stderr)
        return 130
