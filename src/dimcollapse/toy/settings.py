"""Settings every toy experiment shares (SPEC §3), and their validation.

Each experiment's config (`StrongAugConfig`, `ImplicitRegConfig`, `DepthConfig`) extends
`ToySettings` with its own fields; all are frozen dataclasses built from keyword arguments and
recorded verbatim (`dataclasses.asdict`) in the experiment's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from dimcollapse.errors import UserError
from dimcollapse.toy import data
from dimcollapse.toy.nets import INITS


@dataclass(frozen=True)
class ToySettings:
    """The paper's toy training setup: plain SGD on the Eqn 2 loss (or the official code's)."""

    steps: int = 10_000
    loss: str = "paper"  # paper (Eqn 2) | official (cross_entropy(z1 z2^T / 0.1))
    reduction: str = "mean"  # the loss over the batch: mean (sum / batch_size) | sum
    seed: int = 0
    batch_size: int = data.BATCH_SIZE
    n_samples: int = data.N_SAMPLES
    dim: int = data.DIM
    record_every: int = 100  # steps between recorded singular values / spectra
    eval_samples: int = data.EVAL_SAMPLES
    dtype: str = "float32"  # float32 | float64


def validate_common(cfg: ToySettings, *, lr: float, init: str) -> None:
    """Raise UserError (naming the flag) for settings no experiment can run with."""
    if cfg.steps < 1:
        raise UserError("--steps must be at least 1")
    if not lr > 0:
        raise UserError("--lr must be positive")
    if cfg.dtype not in ("float32", "float64"):
        raise UserError("--dtype must be float32 or float64")
    if init not in INITS:
        raise UserError(f"unknown --init {init!r}: choose one of {', '.join(INITS)}")
