"""R independent bias-free linear networks held as batched weights, with a hand-written backward.

Run r computes z = W_L s(... s(W_2 s(W_1 x))) with its own depth L_r <= L_max and s = ReLU between
layers when `relu[r]`, identity otherwise (Fig 11; Fig 3 is L = 1, Fig 5/6 is L = 2, linear).
Layer l is stored as one (R, d, d) tensor; layers past a run's depth are the identity and are
never updated, so runs of different depths share one batched computation.

Initialisations (Section 4-5, SPEC §3), drawn per layer from the `init` stream of each seed, so
runs with equal seeds start from equal layers (a depth-2 run's layers are a depth-4 run's first
two):
- `orthogonal`: a Haar-random orthogonal matrix (every direction starts equal; Fig 3 default).
- `spread`: U diag(exp(-0.35 k)) V^T, k = 0..d-1, U, V Haar-random orthogonal (Fig 5/6/11).
- `default`: torch.nn.Linear's weight init, U(-1/sqrt(d), 1/sqrt(d)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from dimcollapse.linalg import haar_orthogonal
from dimcollapse.toy.data import make_generator


def _orthogonal(d: int, gen: torch.Generator) -> torch.Tensor:
    return haar_orthogonal(d, gen)


def _spread(d: int, gen: torch.Generator, decay: float = 0.35) -> torch.Tensor:
    u, v = haar_orthogonal(d, gen), haar_orthogonal(d, gen)
    s = torch.exp(-decay * torch.arange(d, dtype=torch.float64))
    return u @ torch.diag(s) @ v.T


def _default(d: int, gen: torch.Generator) -> torch.Tensor:
    bound = 1.0 / d**0.5
    return (torch.rand(d, d, generator=gen, dtype=torch.float64) * 2 - 1) * bound


INITS: dict[str, Callable[[int, torch.Generator], torch.Tensor]] = {
    "orthogonal": _orthogonal,
    "spread": _spread,
    "default": _default,
}


def init_layers(seeds: Sequence[int], max_depth: int, dim: int, init: str,
                dtype: torch.dtype) -> list[torch.Tensor]:
    """`max_depth` tensors (R, d, d): layer l of run r from the init stream of seeds[r]."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose from {sorted(INITS)}")
    per_seed = {}
    for s in sorted(set(int(s) for s in seeds)):
        gen = make_generator(s, f"init-{init}")
        per_seed[s] = [INITS[init](dim, gen) for _ in range(max_depth)]
    return [torch.stack([per_seed[int(s)][l] for s in seeds]).to(dtype)
            for l in range(max_depth)]


class LinearStack:
    """Batched stack of bias-free linear layers, with manual forward/backward and plain SGD.

    `weights`: list of L_max tensors (R, d, d); `depth`: (R,) layers used per run;
    `relu`: (R,) ReLU between layers per run. Layers l >= depth[r] must be the identity.
    """

    def __init__(self, weights: list[torch.Tensor], depth: Sequence[int] | None = None,
                 relu: Sequence[bool] | None = None):
        r = weights[0].shape[0]
        self.weights = [w.clone() for w in weights]
        self.depth = torch.tensor(depth if depth is not None else [len(weights)] * r)
        self.relu = torch.tensor(relu if relu is not None else [False] * r, dtype=torch.bool)
        if int(self.depth.max()) > len(weights) or int(self.depth.min()) < 1:
            raise ValueError("each run's depth must be between 1 and the number of layers")
        eye = torch.eye(weights[0].shape[-1], dtype=weights[0].dtype)
        for l, w in enumerate(self.weights):
            pad = self.depth <= l
            w[pad] = eye
        # per layer: (R,1,1) mask of runs that train it (None when all do), and of runs that
        # apply ReLU after it (None when none do)
        self._train_mask = [None if bool((self.depth > l).all()) else
                            (self.depth > l).to(weights[0].dtype)[:, None, None]
                            for l in range(len(weights))]
        # (R,1,1): 1 for runs with a ReLU after layer l, 0 else; None when no run has one
        act = [(self.relu & (self.depth - 1 > l)) for l in range(len(weights))]
        self._act_mask = [a.to(weights[0].dtype)[:, None, None] if bool(a.any()) else None
                          for a in act]

    @property
    def num_runs(self) -> int:
        return self.weights[0].shape[0]

    def product(self) -> torch.Tensor:
        """W_L ... W_1 (meaningful for linear runs). Shape: (R, d, d)."""
        p = self.weights[0]
        for w in self.weights[1:]:
            p = w @ p
        return p

    def forward(self, x: torch.Tensor, *, keep: bool = False):
        """z for inputs x (R, N, d) -> (R, N, d); with keep=True also the cache for backward."""
        h, cache = x, []
        for w, act in zip(self.weights, self._act_mask, strict=True):
            a = torch.bmm(h, w.transpose(1, 2))
            if keep:
                cache.append((h, a if act is not None else None))
            # per-run ReLU: h = a - q min(a, 0) with q = 1 for ReLU runs, 0 for linear ones
            # (cheaper than comparisons and a where on this CPU)
            h = a if act is None else a - act * a.clamp(max=0)
        return (h, cache) if keep else h

    def backward(self, cache, gz: torch.Tensor) -> list[torch.Tensor]:
        """dL/dW_l for every layer, given dL/dz (R, N, d) and the forward cache."""
        grads: list[torch.Tensor] = [None] * len(self.weights)  # type: ignore[list-item]
        g = gz
        for l in range(len(self.weights) - 1, -1, -1):
            h, a = cache[l]
            act = self._act_mask[l]
            if a is not None:  # ReLU runs take relu's backward, linear runs pass g through
                assert act is not None  # forward caches a only where the layer has a mask
                g = torch.lerp(g, torch.ops.aten.threshold_backward(g, a, 0), act)
            grads[l] = torch.bmm(g.transpose(1, 2), h)
            if l:
                g = torch.bmm(g, self.weights[l])
        return grads

    def sgd_step(self, grads: list[torch.Tensor], lr: torch.Tensor) -> None:
        """W_l <- W_l - lr[r] dL/dW_l (plain SGD: no momentum, no weight decay). lr: (R,1,1)."""
        for w, g, m in zip(self.weights, grads, self._train_mask, strict=True):
            step = g * lr if m is None else g * (lr * m)
            w.sub_(step)
