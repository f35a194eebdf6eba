"""Deterministic, class-balanced subsets (`--train-subset N`).

Definition: shuffle the dataset with the counter RNG keyed by (SUBSET_DOMAIN, seed); give each
sample its rank among the samples of its class in that order; take the N samples of lowest
(rank, shuffled position). So every class gets floor(N/C) or ceil(N/C) samples while it has
enough, the choice depends only on (targets, N, seed), and subset(N) is contained in
subset(M) for N < M. Returned indices are sorted ascending. Unlabeled samples (target -1)
count as one class.
"""

from __future__ import annotations

import torch

from dimcollapse.data.hashing import permutation
from dimcollapse.errors import UserError

SUBSET_DOMAIN = 0x5B5E7  # separates subset draws from every other use of the counter RNG


def balanced_subset(targets: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices (LongTensor [n], ascending) of a class-balanced subset. targets: LongTensor [N]."""
    total = len(targets)
    if not 0 < n <= total:
        raise UserError(f"subset size {n} is out of range: the dataset has {total} images; pass "
                        f"a subset between 1 and {total}")
    if seed < 0:
        raise UserError(f"subset seed must be >= 0, got {seed}")
    perm = permutation(total, SUBSET_DOMAIN, seed)
    _, cls = torch.unique(targets[perm], return_inverse=True)
    by_class = torch.argsort(cls, stable=True)  # perm positions grouped by class, order kept
    counts = torch.bincount(cls)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(total, dtype=torch.int64)
    rank[by_class] = torch.arange(total) - starts[cls[by_class]]
    order = torch.argsort(rank * total + torch.arange(total), stable=True)
    return torch.sort(perm[order[:n]]).values
