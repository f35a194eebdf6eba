"""Monitors that run inside the training loop: the online probe's bookkeeping and the spectrum.

Online probe: a linear classifier on r.detach() of view 1, trained jointly with its
cross-entropy added to the loss (official code; SPEC §4); it reads labels only for this
monitor, never for the representation (the detach stops its gradient at r).

Spectrum hook: every `every_steps` steps, the covariance spectrum (Eqn 1, on L2-normalised
vectors as the paper's figures) of r and of z over the training views of view 1 of the last
`window_steps` steps, pooled over all ranks by a `CollapseMonitor`; it logs RankMe and
the number of collapsed dimensions. It measures the model as it moves through the window, so it
is a monitor; `dimcollapse spectrum` measures a checkpoint on the test split. With a fixed
probe set (`train.probe_set.ProbeSet`, --spectrum-probe N) the same steps also measure r and z
of N held-out images in eval mode (keys probe_*), comparable across arms, seeds and steps.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from dimcollapse.devices import at_least_float32
from dimcollapse.monitor import CollapseMonitor


def probe_loss_and_correct(logits: torch.Tensor, target: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy (mean over rows) and the number of top-1 hits. Shape: (b, C), (b,)."""
    logits = at_least_float32(logits)
    loss = F.cross_entropy(logits, target)
    correct = (logits.argmax(dim=1) == target).sum()
    return loss, correct


def default_window_steps(dim: int, global_batch: int, every_steps: int) -> int:
    """Enough steps that the pooled sample count is at least twice the dimension."""
    return max(1, min(every_steps, math.ceil(2 * dim / global_batch)))


class SpectrumHook:
    """Pools r and z over windows of steps and summarises their spectra at the window's end.

    A measurement happens after the step whose completed-step count c is a multiple of
    `every_steps`, and after the last step; the window is the `window_steps` steps up to it.
    """

    def __init__(self, *, every_steps: int, window_steps: int, total_steps: int,
                 device: torch.device, probe: Any = None):
        self.every = every_steps
        self.probe = probe  # a train.probe_set.ProbeSet, or None (no probe_* keys)
        self.window = max(1, min(window_steps, every_steps)) if every_steps else 0
        self.total = total_steps
        self.device = device
        self._monitor: Any = None  # a CollapseMonitor, made with the first batch

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def in_window(self, completed: int) -> bool:
        """True when the step that brings the count to `completed` is pooled."""
        if not self.enabled:
            return False
        to_next = (-completed) % self.every  # steps from `completed` to the next measurement
        return to_next < self.window or self.total - completed < self.window

    def is_measurement(self, completed: int) -> bool:
        return self.enabled and (completed % self.every == 0 or completed == self.total)

    def update(self, r: torch.Tensor, z: torch.Tensor) -> None:
        """Add a batch. Shape: r (b, D), z (b, d) or (b, groups, k) (flattened to groups*k)."""
        if self._monitor is None:
            # The public monitor is the one code path; the schedule above stays here.
            self._monitor = CollapseMonitor(metrics=("rankme", "collapsed_dims"),
                                            normalize=True, precision="float32",
                                            device=self.device)
        self._monitor.update("r", r.detach().float())
        self._monitor.update("z", z.detach().flatten(1).float())

    def summary(self) -> dict[str, Any]:
        """Merge ranks, summarise, reset. Keys: rankme_r, collapsed_dims_r, rankme_z, ... ."""
        if self._monitor is None:
            return {}
        out: dict[str, Any] = {}
        for key, metrics in self._monitor.compute().items():
            out[f"rankme_{key}"] = None if metrics["rankme"] is None else float(metrics["rankme"])
            out[f"collapsed_dims_{key}"] = int(metrics["collapsed_dims"])
            out["spectrum_samples"] = int(metrics["n"])
        self._monitor.reset()
        return out

    def probe_summary(self, encoder: torch.nn.Module) -> dict[str, Any]:
        """probe_rankme_r, probe_collapsed_dims_r, probe_rankme_z, ... of `encoder` on the
        fixed probe set ({} without one). Every rank calls it at the same steps."""
        return {} if self.probe is None else self.probe.measure(encoder)
