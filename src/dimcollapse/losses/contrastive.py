"""Contrastive losses: the official DirectCLR InfoNCE and SimCLR's NT-Xent, as pure functions.

Both take the two views' embeddings z1, z2 of shape (n, d) (this rank's rows), or (n, G, k) for
G independent groups (the `group` projector): each group is normalised and scored on its own and
the group losses are *summed*, as in the official `--mode group`.

Computation happens in float32 (float64 inputs stay float64) with autocast disabled: logits
divided by tau = 0.1 lose too much in bf16/fp16.

Distributed (world size W > 1, equal local batches n, global batch N = W n): the columns of the
logits are the embeddings of all ranks, gathered in rank order with the one gradient-passing
all-gather (`dimcollapse.distributed.gather_with_grad`), the rows are this rank's n samples, the
positive of local row i sits at global column rank * n + i, and each rank's loss is the mean over
its own rows. Why this reproduces the one-process gradient exactly:

    one process:   L = (1/N) sum_{i<N} l_i = (1/W) sum_r L_r,   L_r = (1/n) sum_{i in rank r} l_i
    rank r's z_r enters every L_s (as columns; as rows only in L_r). The gather's backward sums
    over ranks, so autograd on rank r yields  g_r = sum_s dL_s/dz_r  = W dL/dz_r  and, through
    the backbone, sum_s dL_s/dtheta restricted to rank r's samples.
    DDP then averages parameter gradients over ranks: (1/W) sum_r sum_s dL_s/dtheta|_r
    = (1/W) sum_s dL_s/dtheta = dL/dtheta,  the one-process gradient of L.

The official code gathers both sides and lets every rank compute the full N x N loss; that gives
the same gradient with W times the logits work. (Unequal local batches would need an extra
size exchange and a weighted mean; the data pipeline gives equal chunks.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dimcollapse import distributed


def _as_groups(z: torch.Tensor, name: str) -> torch.Tensor:
    """(n, d) -> (n, 1, d); (n, G, k) unchanged; low-precision floats -> float32."""
    if z.dim() == 2:
        z = z.unsqueeze(1)
    elif z.dim() != 3:
        raise ValueError(f"{name} must be (n, d) or (n, groups, k), got shape {tuple(z.shape)}")
    if z.dtype != torch.float64:
        z = z.float()
    return z


def _prepare(z1: torch.Tensor, z2: torch.Tensor, temperature: float, normalize: bool):
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 differ in shape: {tuple(z1.shape)} vs {tuple(z2.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q1, q2 = _as_groups(z1, "z1"), _as_groups(z2, "z2")
    if normalize:
        q1, q2 = F.normalize(q1, dim=-1), F.normalize(q2, dim=-1)
    return q1, q2


def _group_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """logits (G, n, M), targets (n,) -> sum over groups of the mean over rows."""
    groups, n, m = logits.shape
    loss = F.cross_entropy(logits.reshape(groups * n, m), targets.repeat(groups))
    return loss * groups


def infonce(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    temperature: float = 0.1,
    normalize: bool = True,
    symmetric: bool = True,
) -> torch.Tensor:
    """InfoNCE exactly as the official DirectCLR code (Section 6; SPEC section 4).

    L(a, b) = -(1/N) sum_i log( exp(<a_i, b_i>/tau) / sum_j exp(<a_i, b_j>/tau) ),
    a, b L2-normalised (normalize=True). The negatives of anchor a_i are the *other view* b_j of
    the other samples only (N - 1 of them); returns (L(z1, z2) + L(z2, z1)) / 2 when symmetric,
    else L(z1, z2). Shape: (n, d) or (n, G, k) each -> scalar. Under DDP see the module doc.
    """
    with torch.autocast(z1.device.type, enabled=False):
        q1, q2 = _prepare(z1, z2, temperature, normalize)
        k1, k2 = distributed.gather_with_grad(q1), distributed.gather_with_grad(q2)
        n = q1.shape[0]
        targets = torch.arange(n, device=q1.device) + distributed.get_rank() * n

        def one_side(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            logits = torch.einsum("ngd,mgd->gnm", q, k) / temperature
            return _group_cross_entropy(logits, targets)

        if not symmetric:
            return one_side(q1, k2)
        return 0.5 * (one_side(q1, k2) + one_side(q2, k1))


def ntxent(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    temperature: float = 0.1,
    normalize: bool = True,
) -> torch.Tensor:
    """NT-Xent, SimCLR's loss (Chen et al. 2020), as solo-learn and lightly implement it.

    The 2N embeddings of both views are the anchors; anchor a's positive is the other view of
    the same sample and its negatives are the 2N - 2 other embeddings of *both* views
    (self-similarity excluded):
    l_a = -log( exp(<u_a, u_p(a)>/tau) / sum_{b != a} exp(<u_a, u_b>/tau) ), loss = mean over a.
    Symmetric by construction. Shape: (n, d) or (n, G, k) each -> scalar.
    """
    with torch.autocast(z1.device.type, enabled=False):
        q1, q2 = _prepare(z1, z2, temperature, normalize)
        k1, k2 = distributed.gather_with_grad(q1), distributed.gather_with_grad(q2)
        n, big_n = q1.shape[0], k1.shape[0]
        q = torch.cat([q1, q2])  # (2n, G, k): this rank's anchors
        k = torch.cat([k1, k2])  # (2N, G, k): all ranks, view 1 then view 2
        local = torch.arange(n, device=q.device) + distributed.get_rank() * n
        self_col = torch.cat([local, local + big_n])
        targets = torch.cat([local + big_n, local])
        logits = torch.einsum("ngd,mgd->gnm", q, k) / temperature  # (G, 2n, 2N)
        rows = torch.arange(2 * n, device=q.device)
        self_mask = torch.zeros(2 * n, 2 * big_n, dtype=torch.bool, device=q.device)
        self_mask[rows, self_col] = True
        logits = logits.masked_fill(self_mask, float("-inf"))
        return _group_cross_entropy(logits, targets)
