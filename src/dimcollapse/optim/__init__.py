"""Optimisation: one LARS, parameter groups by parameter, warm-up + cosine, lr scaling rule."""

from dimcollapse.optim.groups import OPTIMIZERS, build_optimizer, param_groups, register_optimizer
from dimcollapse.optim.lars import LARS, excluded_by_shape
from dimcollapse.optim.schedule import scaled_lr, set_lr, warmup_cosine

__all__ = [
    "LARS",
    "OPTIMIZERS",
    "build_optimizer",
    "excluded_by_shape",
    "param_groups",
    "register_optimizer",
    "scaled_lr",
    "set_lr",
    "warmup_cosine",
]
