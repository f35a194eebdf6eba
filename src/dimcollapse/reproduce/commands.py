"""The stand-alone commands equivalent to one arm of a reproduction (recorded per arm).

`reproduce` trains and evaluates in-process; each arm's record carries the `dimcollapse train`,
`probe` and `spectrum` command lines that compute the same files one by one. The train command
is built from the arm's config overrides with `train`'s flag names (tests check that it
resolves to the run's config.json).
"""

from __future__ import annotations

import shlex
from typing import Any

from dimcollapse.catalogue import flag_args


def train_command(preset: str, overrides: dict[str, Any], run_dir: str) -> str | None:
    """`dimcollapse train --preset P ... --out RUN` for these overrides, or None when one of
    them has no flag (the run's config.json then reproduces it: `--config RUN/config.json`)."""
    args = ["dimcollapse", "train", "--preset", preset]
    for key, value in overrides.items():
        if value is None and key in ("model.d0", "loop.max_steps"):
            continue  # unset: the arm has no d0 / --epochs
        flag = flag_args(key, value)
        if flag is None:
            return None
        args += flag
    args += ["--out", run_dir]
    return shlex.join(args)


def eval_commands(run_dir: str, *, select_l2: bool, subvector: int | None,
                  precision: str) -> list[str]:
    """The probe and spectrum commands that write the arm's evaluation files."""
    sel = ["--select-l2"] if select_l2 else []
    prec = [] if precision == "auto" else ["--precision", precision]
    fprec = [] if precision == "auto" else ["--feature-precision", precision]
    cmds = [["dimcollapse", "probe", run_dir, *sel, *prec]]
    if subvector is not None:
        cmds.append(["dimcollapse", "probe", run_dir, "--subvector", str(subvector), *sel,
                     *prec])
    cmds += [["dimcollapse", "spectrum", run_dir, "--space", "representation", *fprec],
             ["dimcollapse", "spectrum", run_dir, "--space", "embedding", *fprec]]
    return [shlex.join(c) for c in cmds]
