"""Fig 10 (Section 6): the rank of the loss's gradient at r and one residual block below it.

DirectCLR feeds z = r[:, :d0] to the loss, so ∂L/∂r = [∂L/∂z, 0]: its N x D matrix has rank
<= d0 exactly (the last D - d0 columns are zero). The paper's claim is that the gradient at h,
the input of the last residual block (r = avgpool(relu(h + F(h))), reaching r through the skip
connection), is nevertheless full rank: the block's residual branch F mixes the channels, so
the coordinates of r beyond d0 still receive gradient and stay meaningful.

`gradient_spectra(encoder, loss_fn, view1, view2)` measures both on one batch of two views, in
float64 (the caller casts model and views): the encoder runs in train mode exactly as a
training step does (two passes, one per view, BatchNorm statistics per view), and the rows of
both views are stacked, so each gradient is a (2N, D) matrix. h is (2N, C, H', W'); it is
reported pooled (mean over the H' x W' positions, (2N, C)) and, where the map has more than
one position, per position ((2N, C) each; each position's own spectrum, not a concatenation,
so a position's rank is comparable with the pooled one).

Numerical rank: the number of singular values above `rtol` x the largest (default 1e-6, well
above float64's ~1e-16 x sqrt(size) round-off and well below any real direction's share).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from torch import nn

from dimcollapse.catalogue import GRADIENT_RANK_RTOL as DEFAULT_RTOL


def singular_values(g: torch.Tensor) -> np.ndarray:
    """Singular values (descending) of a gradient matrix, in float64. Shape: (n, d) -> (min,)."""
    return np.linalg.svd(g.detach().to(torch.float64).cpu().numpy(), compute_uv=False)


def numerical_rank(s: np.ndarray, rtol: float = DEFAULT_RTOL) -> int:
    """Number of singular values > rtol x the largest (0 for an all-zero matrix)."""
    s = np.asarray(s, dtype=np.float64)
    if s.size == 0 or s[0] <= 0:
        return 0
    return int((s > rtol * s[0]).sum())


@dataclass
class GradientSpectra:
    """Singular values of ∂L/∂r (2N, D), ∂L/∂h pooled (2N, C) and per position of h.

    positions: (row, col) of each position of h's map, in the order of `per_position`
    (empty when h is 1 x 1, where pooled and per position coincide).
    """

    loss: float
    rows: int  # 2N: both views' rows stacked
    r_dim: int
    h_shape: tuple[int, int, int]  # (C, H', W') of h
    rtol: float
    sv_r: np.ndarray
    sv_h: np.ndarray
    positions: list[tuple[int, int]] = field(default_factory=list)
    sv_h_positions: list[np.ndarray] = field(default_factory=list)

    @property
    def rank_r(self) -> int:
        return numerical_rank(self.sv_r, self.rtol)

    @property
    def rank_h(self) -> int:
        return numerical_rank(self.sv_h, self.rtol)

    def to_dict(self) -> dict:
        def sv(s: np.ndarray) -> list[float]:
            return [float(v) for v in s]

        return {
            "loss": self.loss, "rows": self.rows, "r_dim": self.r_dim,
            "h_shape": list(self.h_shape), "rtol": self.rtol,
            "grad_r": {"shape": [self.rows, self.r_dim], "rank": self.rank_r,
                       "singular_values": sv(self.sv_r)},
            "grad_h_pooled": {"shape": [self.rows, self.h_shape[0]], "rank": self.rank_h,
                              "singular_values": sv(self.sv_h)},
            "grad_h_per_position": [
                {"position": list(p), "rank": numerical_rank(s, self.rtol),
                 "singular_values": sv(s)}
                for p, s in zip(self.positions, self.sv_h_positions, strict=True)],
        }


def last_block(backbone: nn.Module) -> nn.Module:
    """layer4's last residual block (BasicBlock / Bottleneck) of a torchvision ResNet."""
    layer4 = getattr(backbone, "layer4", None)
    if not isinstance(layer4, nn.Sequential) or len(layer4) == 0:
        raise ValueError("the backbone has no layer4 of residual blocks (a torchvision ResNet)")
    return layer4[-1]


def gradient_spectra(encoder: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor],
                                                            torch.Tensor],
                     view1: torch.Tensor, view2: torch.Tensor, *,
                     rtol: float = DEFAULT_RTOL) -> GradientSpectra:
    """Singular values of ∂L/∂r and ∂L/∂h on one batch (Fig 10).

    encoder: `models.Encoder` (forward(x) -> (r, z)) with a torchvision ResNet backbone, in the
    dtype of the views (float64 for this measurement); set to train mode here, as a training
    step runs it; its parameter gradients are left untouched (autograd.grad on r and h only).
    Shape: view1, view2 (N, 3, S, S) -> r (N, D), h (N, C, H', W') per view.
    """
    encoder.train()
    captured: list[torch.Tensor] = []

    def keep_input(_module, inputs):
        captured.append(inputs[0])

    handle = last_block(cast(nn.Module, encoder.backbone)).register_forward_pre_hook(keep_input)
    try:
        r1, z1 = encoder(view1)
        r2, z2 = encoder(view2)
    finally:
        handle.remove()
    loss = loss_fn(z1, z2)
    h1, h2 = captured
    g = torch.autograd.grad(loss, [r1, r2, h1, h2], allow_unused=True)
    zeros = [torch.zeros_like(t) for t in (r1, r2, h1, h2)]
    g_r1, g_r2, g_h1, g_h2 = (z if gi is None else gi for gi, z in zip(g, zeros, strict=True))
    g_r = torch.cat([g_r1, g_r2])
    g_h = torch.cat([g_h1, g_h2])  # (2N, C, H', W')
    c, hh, ww = g_h.shape[1:]
    positions = [(i, j) for i in range(hh) for j in range(ww)] if hh * ww > 1 else []
    return GradientSpectra(
        loss=float(loss.detach()), rows=g_r.shape[0], r_dim=g_r.shape[1],
        h_shape=(int(c), int(hh), int(ww)), rtol=rtol,
        sv_r=singular_values(g_r), sv_h=singular_values(g_h.mean(dim=(2, 3))),
        positions=positions,
        sv_h_positions=[singular_values(g_h[:, :, i, j]) for i, j in positions])
