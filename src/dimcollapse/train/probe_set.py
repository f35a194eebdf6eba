"""The spectrum hook's fixed probe set: the same held-out images for every arm, run and step.

The window spectrum (`SpectrumHook.summary`) pools augmented training views while the model
moves, so its numbers depend on the run's batches and augmentations. The probe set measures
instead a fixed sample of the *test* split, unaugmented (resized / centre-cropped to the
run's image size as `views.EvalBatches` does for evaluation), with the model frozen at that
step: RankMe (Garrido et al. 2023) and collapsed dims (sigma_k < 1e-4 sigma_1, Eqn 1 on
L2-normalised rows) of r and of z. Curves are then comparable across arms and runs.

- Which images: `balanced_subset(test targets, n, seed=PROBE_SEED)`, a class-balanced choice
  by a counter-based hash of (n, seed 0) only: independent of the run's seed, so every arm and
  seed of a table sees the same images (the same n always gives the same set). A split with
  fewer than n images is used whole (`probe_images` records the count; the run says so).
- How: the model in eval mode (BatchNorm uses its running statistics and does not update
  them), `torch.no_grad()`, float32 without autocast, whatever the training precision (so the
  probe's noise floor is float32's, not bf16's); then back to train mode. It draws nothing from
  any RNG, so a run ends with the same weights with the probe set on or off (tested).
- Distributed: rank k measures the k-th contiguous shard; `CollapseMonitor.compute` merges the
  ranks (every rank calls it, at the same steps), so all ranks get the whole set's numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dimcollapse.errors import UserError

PROBE_SEED = 0  # the probe set's subset seed: fixed, not the run's
PROBE_BATCH = 256  # images per forward pass (memory only; the numbers do not depend on it)


def held_out_split(dataset: str, data_dir: str) -> str:
    """The held-out split's name: "test", or "val" for an ImageNet-style folder without test/."""
    root = Path(data_dir).expanduser()
    if dataset == "imagefolder" and not (root / "test").is_dir() and (root / "val").is_dir():
        return "val"
    return "test"


class ProbeSet:
    """Normalised probe images on the device and the measurement of r and z on them.

    images: float32 (n_local, 3, S, S), this rank's shard of the probe set.
    """

    def __init__(self, images: torch.Tensor, *, total: int, channels_last: bool = False,
                 note: str | None = None):
        self.images = images
        self.total = total
        self.channels_last = channels_last
        self.note = note  # one line for the run's log (the split was smaller than asked)

    @classmethod
    def from_dataset(cls, dataset, *, count: int, image_size: int, device: torch.device,
                     rank: int = 0, world_size: int = 1, channels_last: bool = False,
                     mean=None, std=None) -> ProbeSet:
        """The class-balanced `count` images of `dataset` (a held-out split), this rank's shard.

        mean, std: the RGB normalisation of the training views (default: the dataset's)."""
        from dimcollapse.data.subset import balanced_subset
        from dimcollapse.views.batches import EvalBatches

        note = None
        if count > len(dataset):
            note = (f"the spectrum probe set is the whole held-out split, {len(dataset)} images "
                    f"(--spectrum-probe asked for {count})")
            count = len(dataset)
        if count < world_size:
            raise UserError(f"--spectrum-probe {count} is fewer than the {world_size} processes: "
                            f"pass at least {world_size}")
        subset = dataset.subset(balanced_subset(dataset.targets, count, PROBE_SEED))
        batches = EvalBatches(subset, batch_size=PROBE_BATCH, image_size=image_size,
                              device=device, rank=rank, world_size=world_size, mean=mean,
                              std=std)
        images = torch.cat([b.images for b in batches])
        return cls(images, total=count, channels_last=channels_last, note=note)

    def measure(self, encoder: nn.Module) -> dict[str, Any]:
        """probe_rankme_r, probe_collapsed_dims_r, probe_rankme_z, probe_collapsed_dims_z,
        probe_images of `encoder` (forward(x) -> (r, z)) on the probe set; restores its mode."""
        from dimcollapse.monitor import CollapseMonitor

        monitor = CollapseMonitor(metrics=("rankme", "collapsed_dims"), normalize=True,
                                  precision="float64", device=self.images.device)
        was_training = encoder.training
        encoder.eval()
        try:
            with torch.no_grad(), torch.autocast(self.images.device.type, enabled=False):
                for x in self.images.split(PROBE_BATCH):
                    if self.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    r, z = encoder(x)
                    monitor.update("r", r.float())
                    monitor.update("z", z.flatten(1).float())
        finally:
            encoder.train(was_training)
        out: dict[str, Any] = {}
        for key, metrics in monitor.compute().items():
            rankme = metrics["rankme"]
            out[f"probe_rankme_{key}"] = None if rankme is None else float(rankme)
            out[f"probe_collapsed_dims_{key}"] = int(metrics["collapsed_dims"])
        out["probe_images"] = self.total
        return out


def build_probe_set(cfg, train_dataset, *, device: torch.device, rank: int, world_size: int,
                    progress: bool = False) -> ProbeSet | None:
    """The run's probe set (`loop.spectrum_probe_images` test images), or None when off (also
    when the spectrum hook is off, --spectrum-every 0). Normalised as `train_dataset`'s views."""
    from dimcollapse.data import build_dataset

    loop, data = cfg.loop, cfg.data
    if not loop.spectrum_probe_images or not loop.spectrum_every_steps:
        return None
    if data.data_dir is None:
        raise UserError("the spectrum probe set needs the dataset's folder: pass --data-dir")
    split = held_out_split(data.dataset, data.data_dir)
    held_out = build_dataset(data.dataset, data.data_dir, split, download=data.download,
                             cache_dir=data.cache_dir, progress=progress)
    return ProbeSet.from_dataset(held_out, count=loop.spectrum_probe_images,
                                 image_size=data.image_size, device=device, rank=rank,
                                 world_size=world_size, channels_last=loop.channels_last,
                                 mean=train_dataset.mean, std=train_dataset.std)
