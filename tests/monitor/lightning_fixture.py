"""A tiny contrastive LightningModule on a fixed random dataset, for the callback's tests.

Run as a script (`python lightning_fixture.py OUT DEVICES`) it fits under strategy="ddp" on
DEVICES CPU processes (gloo): Lightning relaunches this same file for the other ranks. Every
rank saves what its projector and training_step produced per optimizer step (OUT/rank{r}.pt),
so a test can recompute the metrics of the global batch with `dimcollapse.measure`; rank 0's
CSVLogger writes OUT/csv/metrics.csv.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from dimcollapse.monitor.lightning import CollapseMonitorCallback

N, D_IN, D_R, D_Z = 128, 10, 32, 16
BATCH = 16  # per process


def dataset() -> TensorDataset:
    """The same N fixed rows on every rank (DistributedSampler splits them, unshuffled)."""
    g = torch.Generator().manual_seed(123)
    return TensorDataset(torch.randn(N, D_IN, generator=g))


class TinySimCLR(L.LightningModule):
    """backbone (r) -> projector (z), InfoNCE between two noisy views of each row."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Sequential(torch.nn.Linear(D_IN, D_R), torch.nn.ReLU())
        self.projector = torch.nn.Linear(D_R, D_Z)
        self.seen: dict[int, dict[str, list[torch.Tensor]]] = {}  # step -> what it produced

    def training_step(self, batch, batch_idx):
        (x,) = batch
        step = self.seen.setdefault(self.global_step + 1, {"z": [], "e": []})
        zs = []
        for _ in range(2):  # two views through the projector: two updates of "z"
            z = self.projector(self.backbone(x + 0.1 * torch.randn_like(x)))
            step["z"].append(z.detach().clone())
            zs.append(F.normalize(z, dim=1))
        logits = zs[0] @ zs[1].T / 0.2
        loss = F.cross_entropy(logits, torch.arange(len(x)))
        step["e"].append(zs[0].detach().clone())
        return {"loss": loss, "e": zs[0].detach()}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def fit(out: Path, *, devices: int = 1, strategy: str = "auto", steps: int = 8,
        every: int = 4, window: int | None = 2, log_every: int = 2) -> tuple:
    out = Path(out)
    model = TinySimCLR()
    callback = CollapseMonitorCallback({"z": "projector"}, outputs={"e": "e"},
                                       every_n_steps=every, window=window)
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy=strategy, max_steps=steps,
                        log_every_n_steps=log_every, callbacks=[callback],
                        logger=L.pytorch.loggers.CSVLogger(out, name="csv", version=""),
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(model, DataLoader(dataset(), batch_size=BATCH, shuffle=False))
    torch.save({"seen": model.seen, "last": callback.last,
                "hooks_left": len(model.projector._forward_hooks)},
               out / f"rank{trainer.global_rank}.pt")
    return trainer, model, callback


if __name__ == "__main__":
    torch.set_num_threads(1)
    fit(Path(sys.argv[1]), devices=int(sys.argv[2]), strategy="ddp")
