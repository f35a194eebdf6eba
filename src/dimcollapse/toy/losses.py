"""The two toy losses, their values and their closed-form gradients with respect to z.

Shapes: z1, z2 are (..., B, d) (any leading run dimensions); values are (...) and gradients have
the shape of z. The training loop uses the closed-form gradients (fewer, larger ops than
autograd); `verify` and the tests check them against autograd in float64.

Both take `reduction`: "sum" over the batch (Eqn 2 as written; Lemma 1's dL/dW = -W X holds for
the sum) or "mean" (the sum / B, as `cross_entropy` reduces by default). Training uses "mean":
with the sum, lr 0.001 makes the k = 3 run of Fig 3 diverge (a step multiplies W by
I + lr X with lr |lambda_min(X)| > 2), and the mean reproduces the numbers the issue
reports; "mean" is the sum with lr / B.

- `paper`: Eqn 2 of the paper, unnormalised z, temperature 1, negatives from one branch:
      L = - sum_i log[ exp(-|z_i - z_i'|^2/2) / (sum_{j!=i} exp(-|z_i - z_j|^2/2)
                                                 + exp(-|z_i - z_i'|^2/2)) ]
  with gradients (SPEC §2)
      g_{z_i}  = sum_{j!=i} a_ij (z_j - z_i') + sum_{j!=i} a_ji (z_j - z_i)
      g_{z_i'} = sum_{j!=i} a_ij (z_i' - z_i)
- `official`: the official toy code's `cross_entropy(z1 @ z2.T / 0.1, arange(n))` (unnormalised
  z, one direction). With P = softmax of the logits by rows, for the sum over i:
      g_{z1} = (P - I) z2 / tau,   g_{z2} = (P - I)^T z1 / tau.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

OFFICIAL_TEMPERATURE = 0.1
REDUCTIONS = ("mean", "sum")


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return per_sample.sum(-1)
    if reduction == "mean":
        return per_sample.mean(-1)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _grad_scale(n: int, reduction: str) -> float:
    _reduce(torch.zeros(1), reduction)  # validates
    return 1.0 if reduction == "sum" else 1.0 / n


def _diag(m: torch.Tensor) -> torch.Tensor:
    return m.diagonal(dim1=-2, dim2=-1)


def paper_logits(z: torch.Tensor, zp: torch.Tensor) -> torch.Tensor:
    """Row-shifted logits of Eqn 2: entry (i, j) is -|z_i - z_j|^2/2 + |z_i|^2/2 for j != i and
    -|z_i - z_i'|^2/2 + |z_i|^2/2 on the diagonal. The per-row shift |z_i|^2/2 cancels in the
    softmax and saves a pass over the B x B matrix. Shape: (..., B, d) x2 -> (..., B, B)."""
    sq = (z * z).sum(-1)
    logits = torch.baddbmm(-0.5 * sq.unsqueeze(-2), z, z.transpose(-2, -1)) if z.ndim == 3 \
        else z @ z.transpose(-2, -1) - 0.5 * sq.unsqueeze(-2)
    pos = (z * zp).sum(-1) - 0.5 * (zp * zp).sum(-1)
    _diag(logits).copy_(pos)
    return logits


def paper_alpha(z: torch.Tensor, zp: torch.Tensor) -> torch.Tensor:
    """alpha of Section 4: a_ij (j != i) off the diagonal, a_ii on it; rows sum to 1.
    Shape: (..., B, d) x2 -> (..., B, B)."""
    return torch.softmax(paper_logits(z, zp), dim=-1)


def paper_loss(z: torch.Tensor, zp: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Eqn 2, summed (as written) or averaged over i. Shape: (..., B, d) x2 -> (...)."""
    return _reduce(-_diag(torch.log_softmax(paper_logits(z, zp), dim=-1)), reduction)


def paper_loss_grad(z: torch.Tensor, zp: torch.Tensor, reduction: str = "sum"
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(g_z, g_z') of Eqn 2 (SPEC §2; divided by B for reduction="mean"), each (..., B, d)."""
    scale = _grad_scale(z.shape[-2], reduction)
    a = paper_alpha(z, zp)
    off = 1.0 - _diag(a)  # sum_{j!=i} a_ij = 1 - a_ii
    _diag(a).zero_()  # a now holds a_ij for j != i only
    col = a.sum(-2)  # sum_{j!=i} a_ji
    gz = (a @ z).add_(a.transpose(-2, -1) @ z)
    gz.sub_(off.unsqueeze(-1) * zp).sub_(col.unsqueeze(-1) * z)
    gzp = off.unsqueeze(-1) * (zp - z)
    if scale != 1.0:
        gz.mul_(scale)
        gzp.mul_(scale)
    return gz, gzp


def official_loss(z1: torch.Tensor, z2: torch.Tensor, reduction: str = "mean",
                  temperature: float = OFFICIAL_TEMPERATURE) -> torch.Tensor:
    """cross_entropy(z1 z2^T / tau, arange(B)) with `reduction`. (..., B, d) x2 -> (...)."""
    logits = z1 @ z2.transpose(-2, -1) / temperature
    return _reduce(-_diag(torch.log_softmax(logits, dim=-1)), reduction)


def official_loss_grad(z1: torch.Tensor, z2: torch.Tensor, reduction: str = "mean",
                       temperature: float = OFFICIAL_TEMPERATURE
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dz1, dL/dz2) of `official_loss`, each (..., B, d)."""
    scale = _grad_scale(z1.shape[-2], reduction)
    p = torch.softmax(z1 @ z2.transpose(-2, -1) / temperature, dim=-1)
    _diag(p).sub_(1.0)
    p.mul_(scale / temperature)
    return p @ z2, p.transpose(-2, -1) @ z1


@dataclass(frozen=True)
class ToyLoss:
    """A toy loss: `value(z1, z2, reduction)` -> (...), `grad(z1, z2, reduction)` -> (g1, g2)."""

    name: str
    value: Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor]
    grad: Callable[[torch.Tensor, torch.Tensor, str], tuple[torch.Tensor, torch.Tensor]]
    description: str


LOSSES: dict[str, ToyLoss] = {
    "paper": ToyLoss("paper", paper_loss, paper_loss_grad,
                     "Eqn 2: distance form, unnormalised z, temperature 1, one-branch "
                     "negatives"),
    "official": ToyLoss("official", official_loss, official_loss_grad,
                        "official toy code: cross_entropy(z1 z2^T / 0.1, arange(n)), "
                        "unnormalised z"),
}
