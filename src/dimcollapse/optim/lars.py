"""LARS (You, Gitman & Ginsburg 2017) in the form the paper's recipe uses (Appendix D).

Per parameter tensor w with gradient g, weight decay beta, trust coefficient eta, momentum m,
learning rate lr (read from the param group at every step, so a schedule can set it):

    d  = g + beta * w                                   (decoupled from the ratio below)
    q  = eta * ||w|| / ||d||    (q = 1 when ||w|| = 0 or ||d|| = 0)
    v <- m * v + q * d
    w <- w - lr * v

This is the update of the official DirectCLR code, of SimCLR's TF LARS and of BYOL/Barlow
Twins. It differs from the LARS paper in two documented ways: the trust ratio divides by the
norm of the decayed gradient ||g + beta w|| rather than ||g|| + beta ||w|| (equal when g is
parallel to w), and lr multiplies the momentum buffer on the way out rather than on the way in
(equal when lr is constant).

Exclusion: a parameter gets neither weight decay nor the trust ratio (d = g, q = 1: plain
momentum SGD) when its group has `lars_exclude=True`, or, in a group that does not say
(`lars_exclude=None`), when it is 1-D or a scalar (`p.ndim <= 1`: biases, BN/LayerNorm weights,
the diagonal projector's scale), as the official `exclude_bias_and_norm` decides. The decision
is by parameter, never by position in a list.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer


def excluded_by_shape(p: torch.Tensor) -> bool:
    """The default rule: 1-D and 0-D parameters (biases and norm weights) are excluded."""
    return p.ndim <= 1


class LARS(Optimizer):
    """LARS with momentum and weight decay. `params`: tensors or param-group dicts; a group may
    set `lars_exclude` (True / False / None = by shape) and its own `weight_decay` and `lr`."""

    def __init__(
        self,
        params,
        *,
        lr: float,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        eta: float = 0.001,
    ):
        if lr < 0 or weight_decay < 0 or not 0 <= momentum < 1 or eta <= 0:
            raise ValueError(
                f"invalid LARS settings lr={lr}, weight_decay={weight_decay}, "
                f"momentum={momentum}, eta={eta}"
            )
        defaults = dict(
            lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta, lars_exclude=None
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter with a gradient. `closure` as in torch optimizers
        (and for GradScaler, which calls `step()` after unscaling the gradients)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                exclude = group["lars_exclude"]
                if exclude is None:
                    exclude = excluded_by_shape(p)
                if not exclude:
                    if group["weight_decay"] != 0:
                        d = d.add(p, alpha=group["weight_decay"])
                    w_norm, d_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    # q = eta ||w|| / ||d||, falling back to 1 when either norm is zero;
                    # torch.where keeps it on the device (no host sync).
                    ratio = group["eta"] * w_norm / d_norm
                    q = torch.where((w_norm > 0) & (d_norm > 0), ratio, torch.ones_like(ratio))
                    d = d.mul(q)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(d)
                p.add_(buf, alpha=-group["lr"])
        return loss
