"""The stand-alone commands equivalent to one arm of a reproduction (recorded per arm).

`reproduce` trains and evaluates in-process; each arm's record carries the `dimcollapse train`,
`probe` and `spectrum` command lines that compute the same files one by one. The train command
is built from the arm's config overrides with `train`'s flag names (tests check that it
resolves to the run's config.json).
"""

from __future__ import annotations

import shlex
from typing import Any

# dotted config key -> `dimcollapse train` flag (cli/train.py's FLAG_KEYS, inverted)
TRAIN_FLAGS = {
    "data.dataset": "--dataset", "data.data_dir": "--data-dir", "data.image_size": "--image-size",
    "data.train_subset": "--train-subset", "data.cache_dir": "--cache-dir",
    "data.num_workers": "--workers", "views.preset": "--views", "model.backbone": "--backbone",
    "model.stem": "--stem", "model.projector": "--projector", "model.d0": "--d0",
    "model.hidden_dim": "--hidden-dim", "model.out_dim": "--out-dim", "model.groups": "--groups",
    "model.sync_bn": "--sync-bn", "loss.name": "--loss", "loss.temperature": "--temperature",
    "optim.name": "--optimizer", "optim.lr": "--lr", "optim.lr_per_256": "--lr-per-256",
    "optim.weight_decay": "--weight-decay", "optim.momentum": "--momentum",
    "optim.eta": "--lars-eta", "optim.warmup_epochs": "--warmup-epochs",
    "optim.warmup_steps": "--warmup-steps", "optim.final_lr_ratio": "--final-lr-ratio",
    "optim.probe_lr_scale": "--probe-lr-scale", "loop.batch_size": "--batch-size",
    "loop.epochs": "--epochs", "loop.max_steps": "--max-steps", "loop.precision": "--precision",
    "loop.channels_last": "--channels-last", "loop.device": "--device",
    "loop.threads": "--threads", "loop.checkpoint_every_steps": "--checkpoint-every",
    "loop.log_every_steps": "--log-every", "loop.spectrum_every_steps": "--spectrum-every",
    "loop.spectrum_window_steps": "--spectrum-window", "seed": "--seed",
}


def train_command(preset: str, overrides: dict[str, Any], run_dir: str) -> str | None:
    """`dimcollapse train --preset P ... --out RUN` for these overrides, or None when one of
    them has no flag (the run's config.json then reproduces it: `--config RUN/config.json`)."""
    args = ["dimcollapse", "train", "--preset", preset]
    for key, value in overrides.items():
        flag = TRAIN_FLAGS.get(key)
        if flag is None:
            return None
        if value is None:
            if key in ("model.d0", "loop.max_steps"):  # unset: the arm has no d0 / --epochs
                continue
            return None
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        else:
            args += [flag, str(value)]
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
