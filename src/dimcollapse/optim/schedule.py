"""Learning-rate schedule and scaling rule, as pure functions of plain numbers."""

from __future__ import annotations

import math

from dimcollapse.errors import UserError


def warmup_cosine(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int,
    base_lr: float,
    final_lr: float = 0.0,
) -> float:
    """The learning rate at optimizer step `step` (0-based): linear warm-up then cosine decay.

    step < warmup_steps:  base_lr * step / warmup_steps            (0 at step 0, as the official
                                                                    code)
    otherwise:            final_lr + (base_lr - final_lr) * (1 + cos(pi * t)) / 2,
                          t = (step - warmup_steps) / (total_steps - warmup_steps), capped at 1,
    so the rate reaches base_lr at step = warmup_steps and final_lr at step = total_steps (and
    stays there). The paper (Appendix D): 10 warm-up epochs of 100; the official code decays to
    final_lr = 0.001 * base_lr.
    """
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise UserError(
            f"schedule needs total_steps >= 1 and 0 <= warmup_steps <= total_steps, got "
            f"total_steps={total_steps}, warmup_steps={warmup_steps}; shorten the warm-up"
        )
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if total_steps == warmup_steps:
        return final_lr
    t = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return final_lr + (base_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def scaled_lr(base_lr: float, batch_size: int, reference: int = 256) -> float:
    """Linear scaling rule (Goyal et al. 2017; SimCLR): lr = base_lr * batch_size / reference.

    The paper's 4.8 at batch 4096 is 0.3 * 4096 / 256. `batch_size` is the global batch.
    """
    if batch_size < 1 or reference < 1:
        raise UserError(f"batch_size ({batch_size}) and reference ({reference}) must be >= 1")
    return base_lr * batch_size / reference


def set_lr(optimizer, lr: float) -> None:
    """Set every param group's lr to `lr` times the group's `lr_scale` (default 1; the online
    probe's groups carry one, see `dimcollapse.build.build_optimizer`)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
