"""Slow references written directly from SPEC §2 with explicit loops over i and j (float64).

Deliberately naive: Python loops over samples, math on scalars/vectors, no vectorisation, so
they share no code (and no mistakes) with dimcollapse.toy.
"""

from __future__ import annotations

import math

import torch


def sqdist(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).sum())


def alpha(z: torch.Tensor, zp: torch.Tensor) -> torch.Tensor:
    """alpha_ij = exp(-|z_i - z_j|^2/2)/Z_i (j != i), alpha_ii = exp(-|z_i - z_i'|^2/2)/Z_i."""
    n = z.shape[0]
    a = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        terms = {}
        for j in range(n):
            if j != i:
                terms[j] = math.exp(-sqdist(z[i], z[j]) / 2)
        terms[i] = math.exp(-sqdist(z[i], zp[i]) / 2)
        zi = sum(terms.values())
        for j, t in terms.items():
            a[i, j] = t / zi
    return a


def paper_loss(z: torch.Tensor, zp: torch.Tensor) -> float:
    """Eqn 2 summed over i."""
    n = z.shape[0]
    total = 0.0
    for i in range(n):
        pos = math.exp(-sqdist(z[i], zp[i]) / 2)
        neg = sum(math.exp(-sqdist(z[i], z[j]) / 2) for j in range(n) if j != i)
        total += -math.log(pos / (neg + pos))
    return total


def paper_grads(z: torch.Tensor, zp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """g_{z_i} = sum_{j!=i} a_ij (z_j - z_i') + sum_{j!=i} a_ji (z_j - z_i);
    g_{z_i'} = sum_{j!=i} a_ij (z_i' - z_i)."""
    n = z.shape[0]
    a = alpha(z, zp)
    gz, gzp = torch.zeros_like(z), torch.zeros_like(zp)
    for i in range(n):
        for j in range(n):
            if j == i:
                continue
            gz[i] += a[i, j] * (z[j] - zp[i]) + a[j, i] * (z[j] - z[i])
            gzp[i] += a[i, j] * (zp[i] - z[i])
    return gz, gzp


def sigma0(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    n, d = x.shape
    s = torch.zeros(d, d, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            if j != i:
                v = x[i] - x[j]
                s += a[i, j] * torch.outer(v, v)
    return s


def sigma1(x: torch.Tensor, xp: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    n, d = x.shape
    s = torch.zeros(d, d, dtype=torch.float64)
    for i in range(n):
        v = xp[i] - x[i]
        s += (1 - a[i, i]) * torch.outer(v, v)
    return s


def official_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.1) -> float:
    """cross_entropy(z1 z2^T / tau, arange(n)), mean over i, written out."""
    n = z1.shape[0]
    total = 0.0
    for i in range(n):
        logits = [float(z1[i] @ z2[j]) / tau for j in range(n)]
        m = max(logits)
        lse = m + math.log(sum(math.exp(v - m) for v in logits))
        total += lse - logits[i]
    return total / n
