"""metrics.jsonl records: what one logged step writes, averaged over the interval since the last.

Every value is already merged over ranks (the loop all-reduces per-step statistics), so rank 0
writes the global figures. Keys of one record:

    step           optimizer steps completed
    epoch          step / steps_per_epoch
    loss           contrastive loss (the arm's objective) at this step, mean over the global batch
    loss_avg       mean of `loss` over the steps since the previous record
    probe_loss     online classifier cross-entropy, mean since the previous record
    probe_acc      online classifier top-1 on the training view 1, fraction in [0, 1], same span
    lr             learning rate used at this step
    images_per_s   dataset images (pairs of views) per second over the span, all ranks together
    time_s         wall seconds since this process started training
    rankme_r, collapsed_dims_r, rankme_z, collapsed_dims_z, spectrum_samples   (spectrum steps)
    probe_rankme_r, probe_collapsed_dims_r, probe_rankme_z, probe_collapsed_dims_z,
    probe_images   (spectrum steps, with --spectrum-probe N: the fixed probe set, eval mode;
                   with it, a first record {step: 0, epoch: 0, probe_*} measures the init)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class IntervalMeter:
    """Sums of per-step global statistics since the last record."""

    steps: int = 0
    loss_sum: float = 0.0
    probe_loss_sum: float = 0.0
    correct: float = 0.0
    count: float = 0.0
    images: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, *, loss: float, probe_loss: float, correct: float, count: float,
            images: int) -> None:
        self.steps += 1
        self.loss_sum += loss
        self.probe_loss_sum += probe_loss
        self.correct += correct
        self.count += count
        self.images += images

    def images_per_s(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.images / elapsed if elapsed > 0 else 0.0

    def record(self, *, step: int, steps_per_epoch: int, loss: float, lr: float,
               time_s: float) -> dict[str, Any]:
        n = max(self.steps, 1)
        return {
            "step": step,
            "epoch": round(step / steps_per_epoch, 4),
            "loss": loss,
            "loss_avg": self.loss_sum / n,
            "probe_loss": self.probe_loss_sum / n,
            "probe_acc": self.correct / max(self.count, 1.0),
            "lr": lr,
            "images_per_s": round(self.images_per_s(), 2),
            "time_s": round(time_s, 2),
        }
