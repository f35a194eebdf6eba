"""One training step: both views through the encoder, loss, online probe, backward, update.

Split in two (`forward_backward`, `apply_update`) so tests can read the gradients between them
(the DDP equivalence test). The per-step statistics are all-reduced once per step (one small
tensor), which gives every rank the same global loss: all ranks then agree on stopping for a
non-finite loss or a signal, so none is left waiting in a collective.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dimcollapse.devices import Precision, at_least_float32
from dimcollapse.distributed import all_reduce_sum_, get_world_size
from dimcollapse.train.hooks import probe_loss_and_correct


class SSLModel(nn.Module):
    """Encoder + online linear classifier: the unit DDP wraps (one forward for both views).

    Views go through the backbone in two passes, as the official code, so BatchNorm statistics
    are per view. Shape: view1, view2 (b, 3, S, S) -> r1 (b, D), z1, z2 (b, d), logits (b, C).
    """

    def __init__(self, encoder: nn.Module, classifier: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.classifier = classifier

    def forward(self, view1: torch.Tensor, view2: torch.Tensor):
        r1, z1 = self.encoder(view1)
        _, z2 = self.encoder(view2)
        logits = self.classifier(r1.detach())
        return r1, z1, z2, logits


@dataclass(frozen=True)
class StepStats:
    """Global (all-rank) statistics of one step."""

    loss: float  # contrastive loss, mean over ranks (each rank: mean over its rows)
    probe_loss: float
    correct: float  # online-probe hits over the global batch
    count: float  # rows in the global batch
    stop: bool  # some rank received SIGTERM/SIGINT

    @property
    def finite(self) -> bool:
        return bool(torch.isfinite(torch.tensor([self.loss, self.probe_loss])).all())


def forward_backward(
    model: nn.Module,
    view1: torch.Tensor,
    view2: torch.Tensor,
    target: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    precision: Precision,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    stop_requested: bool = False,
    channels_last: bool = False,
) -> tuple[StepStats, torch.Tensor, torch.Tensor]:
    """Forward both views, reduce the step's statistics, and backpropagate if the loss is finite.

    Returns (stats, r1, z1) with r1, z1 detached (for the spectrum hook). The contrastive loss
    is computed in float32 (float64 for a float64 model) from the (possibly autocast)
    embeddings; the total loss backpropagated is contrastive + probe cross-entropy. On a
    non-finite global loss nothing is backpropagated.
    """
    if channels_last:
        view1 = view1.contiguous(memory_format=torch.channels_last)
        view2 = view2.contiguous(memory_format=torch.channels_last)
    with precision.autocast():
        r1, z1, z2, logits = model(view1, view2)
    ssl = loss_fn(at_least_float32(z1), at_least_float32(z2))
    probe, correct = probe_loss_and_correct(logits, target)
    world = get_world_size()
    stats_t = torch.stack([  # float64, so a float64 model's losses are reported unrounded
        torch.as_tensor(v, dtype=torch.float64, device=correct.device)
        for v in (ssl.detach() / world, probe.detach() / world, correct, target.numel(),
                  float(stop_requested))
    ])
    all_reduce_sum_(stats_t)
    loss, probe_mean, hits, rows, stop = stats_t.tolist()
    stats = StepStats(loss, probe_mean, hits, rows, stop > 0)
    if stats.finite:
        optimizer.zero_grad(set_to_none=True)
        total = ssl + probe
        (scaler.scale(total) if scaler is not None else total).backward()
    return stats, r1.detach(), z1.detach()


def apply_update(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """Optimizer step (through the GradScaler under fp16, which skips steps with inf grads)."""
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
