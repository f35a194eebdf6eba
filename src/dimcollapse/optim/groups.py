"""Parameter groups (weight decay and LARS exclusion decided per parameter) and the optimizer
registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from dimcollapse import catalogue
from dimcollapse.errors import UserError
from dimcollapse.optim.lars import LARS, excluded_by_shape


def _named_parameters(modules) -> Iterable[tuple[str, nn.Parameter]]:
    if isinstance(modules, nn.Module):
        yield from modules.named_parameters()
        return
    items = modules.items() if isinstance(modules, dict) else modules
    for prefix, module in items:
        for name, p in module.named_parameters():
            yield f"{prefix}.{name}" if prefix else name, p


def param_groups(
    modules: nn.Module | dict[str, nn.Module] | Iterable[tuple[str, nn.Module]],
    *,
    weight_decay: float,
) -> list[dict]:
    """Split trainable parameters into two optimizer groups, decided parameter by parameter.

    `modules`: a model, or named modules ({"backbone": m1, "projector": m2} or (name, module)
    pairs). Returns [{"params", "names", "weight_decay": weight_decay, "lars_exclude": False},
    {"params", "names", "weight_decay": 0.0, "lars_exclude": True}], empty groups left out.
    Excluded: 1-D and 0-D parameters (biases, BatchNorm/LayerNorm weights and biases, the
    diagonal projector's scale), as the official `exclude_bias_and_norm`. Parameters shared
    between modules appear once; frozen ones (requires_grad=False) are skipped.
    """
    seen: set[int] = set()
    decay: dict = {"params": [], "names": [], "weight_decay": weight_decay, "lars_exclude": False}
    keep: dict = {"params": [], "names": [], "weight_decay": 0.0, "lars_exclude": True}
    for name, p in _named_parameters(modules):
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        group = keep if excluded_by_shape(p) else decay
        group["params"].append(p)
        group["names"].append(name)
    return [g for g in (decay, keep) if g["params"]]


def _lars(groups, lr, weight_decay, momentum, eta):
    return LARS(groups, lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta)


def _sgd(groups, lr, weight_decay, momentum, eta):
    return torch.optim.SGD(groups, lr=lr, weight_decay=weight_decay, momentum=momentum)


def _adamw(groups, lr, weight_decay, momentum, eta):
    # momentum does not apply (Adam's betas keep torch's defaults, 0.9 and 0.999).
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "lars": _lars,
    "sgd": _sgd,
    "adamw": _adamw,
}
catalogue.OPTIMIZERS.check(OPTIMIZERS)


def register_optimizer(name: str, factory: Callable[..., torch.optim.Optimizer]) -> None:
    """Add `name` to OPTIMIZERS and the catalogue (`--optimizer` accepts it).
    factory(groups, lr, weight_decay, momentum, eta) -> optimizer."""
    catalogue.OPTIMIZERS.register(name, OPTIMIZERS, factory)


def build_optimizer(
    name: str,
    groups,
    *,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    eta: float = 0.001,
) -> torch.optim.Optimizer:
    """`name` in OPTIMIZERS (lars | sgd | adamw) over `groups` (from `param_groups`, or plain
    parameters). A group's own `weight_decay` wins over the `weight_decay` argument, which is
    the default for groups that do not set one; LARS also reads each group's `lars_exclude`.
    `momentum` is used by lars and sgd (the paper: 0.9); `eta`, the LARS trust coefficient
    (the paper: 0.001), by lars only."""
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](groups, lr, weight_decay, momentum, eta)
