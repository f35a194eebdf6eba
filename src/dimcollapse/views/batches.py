"""Batch iterators: TwoViewBatches (pretraining) and EvalBatches (feature extraction).

No hidden iterator state: the batch of step s is a function of (dataset, seed, s, batch size,
rank, world size). Epoch e's order is a counter-RNG permutation keyed by (seed, e); step s
reads positions [k B, (k + 1) B) of it (k = s mod steps_per_epoch, drop_last), and rank r takes
the r-th contiguous chunk of B / world_size. So resuming at start_step reproduces the run, and
the union of the ranks' batches is the 1-process batch, sample for sample, view for view.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dimcollapse.data.dataset import ImageDataset
from dimcollapse.data.hashing import permutation
from dimcollapse.errors import UserError
from dimcollapse.views import geometry, streaming
from dimcollapse.views.presets import TwoViews, normalize

EPOCH_DOMAIN = 0xE90C  # separates epoch permutations from other counter-RNG uses


@dataclass
class TwoViewBatch:
    """One step's local batch. index, target: LongTensor [b] (index = row of the dataset);
    view1, view2: float32 [b, 3, S, S], normalised, on the requested device."""

    step: int
    epoch: int
    index: torch.Tensor
    target: torch.Tensor
    view1: torch.Tensor
    view2: torch.Tensor


class TwoViewBatches:
    """Endless iterator of two-view batches from `start_step` on (the caller stops it).

    batch_size is the global batch, split into world_size contiguous chunks of equal size.
    Resident datasets: uint8 rows are indexed, moved to `device`, and augmented there in one
    batched pass; when the images already live on the GPU (`ImageDataset.to`) the rows are
    indexed there and nothing crosses the bus but the indices. Streaming datasets:
    `num_workers` loader processes decode and crop.
    """

    def __init__(self, dataset: ImageDataset, views: TwoViews, *, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu",
                 start_step: int = 0, num_workers: int = 0):
        if batch_size <= 0 or batch_size % world_size:
            raise UserError(f"batch size {batch_size} must be a positive multiple of the "
                            f"{world_size} processes; change --batch-size")
        if len(dataset) < batch_size:
            raise UserError(f"the dataset has {len(dataset)} images, fewer than one batch of "
                            f"{batch_size}; use a smaller --batch-size or a larger subset")
        if seed < 0 or start_step < 0 or not 0 <= rank < world_size:
            raise ValueError("seed and start_step must be >= 0 and 0 <= rank < world_size")
        self.dataset, self.views = dataset, views
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.local_batch_size = batch_size // world_size
        self.device = torch.device(device)
        self.start_step, self.num_workers = start_step, num_workers
        self.steps_per_epoch = len(dataset) // batch_size
        self.mean = views.mean or dataset.mean
        self.std = views.std or dataset.std
        self._perm_epoch = -1
        self._perm: torch.Tensor | None = None

    def epoch_permutation(self, epoch: int) -> torch.Tensor:
        """Order of the dataset in epoch `epoch`. LongTensor [N]."""
        if epoch != self._perm_epoch:
            self._perm = permutation(len(self.dataset), EPOCH_DOMAIN, self.seed, epoch)
            self._perm_epoch = epoch
        assert self._perm is not None  # drawn above on the first call
        return self._perm

    def global_indices(self, step: int) -> torch.Tensor:
        """Dataset rows of step `step`'s global batch. LongTensor [batch_size]."""
        epoch, k = divmod(step, self.steps_per_epoch)
        return self.epoch_permutation(epoch)[k * self.batch_size:(k + 1) * self.batch_size]

    def indices(self, step: int) -> torch.Tensor:
        """This rank's rows of step `step`. LongTensor [batch_size / world_size]."""
        b = self.local_batch_size
        return self.global_indices(step)[self.rank * b:(self.rank + 1) * b]

    def batch(self, step: int) -> TwoViewBatch:
        """Step `step`'s local batch, computed directly (resident datasets)."""
        stored = self.dataset.images
        if stored is None:  # not resident
            raise ValueError("batch(step) needs a resident dataset; iterate for streaming ones")
        idx = self.indices(step)
        if stored.device.type != "cpu":  # resident on the GPU (`ImageDataset.to`): cut it there
            images = stored[idx.to(stored.device)].to(self.device)
        else:
            images = stored[idx]
            if self.device.type == "cuda":
                images = images.pin_memory().to(self.device, non_blocking=True)
        v1, v2 = self.views(images, idx, seed=self.seed, step=step, mean=self.mean, std=self.std)
        return TwoViewBatch(step, step // self.steps_per_epoch, idx,
                            self.dataset.targets[idx].to(self.device), v1, v2)

    def __iter__(self):
        if self.dataset.resident:
            step = self.start_step
            while True:
                yield self.batch(step)
                step += 1
        task = streaming.CropTask(self.dataset, self.views, self.seed)
        keys = streaming.StepKeys(self.indices, self.start_step)
        load = streaming.loader(task, keys, num_workers=self.num_workers,
                                pin_memory=self.device.type == "cuda")
        for step, (idx, target, crops) in enumerate(load, start=self.start_step):
            crops = crops.to(self.device, non_blocking=True)
            v1, v2 = (self.views.from_crops(crops[:, v], idx, seed=self.seed, step=step, view=v,
                                            mean=self.mean, std=self.std) for v in (0, 1))
            yield TwoViewBatch(step, step // self.steps_per_epoch, idx,
                               target.to(self.device), v1, v2)


@dataclass
class EvalBatch:
    """index, target: LongTensor [b]; images: float32 [b, 3, S, S] normalised. Unpacks as
    (index, images, target)."""

    index: torch.Tensor
    images: torch.Tensor
    target: torch.Tensor

    def __iter__(self):
        return iter((self.index, self.images, self.target))


class EvalBatches:
    """The dataset in order, without augmentation, in batches of batch_size (last one partial).

    Resident images of size S are used as is; other sizes are resized (short side to S,
    antialiased bilinear) and centre-cropped. Streaming images: short side to S / 0.875, centre
    crop S (ImageNet's 256 -> 224). rank/world_size: take the rank-th of world_size contiguous
    shards (for distributed feature extraction; default: everything).
    """

    def __init__(self, dataset: ImageDataset, *, batch_size: int, image_size: int,
                 device: str | torch.device = "cpu", num_workers: int = 0, mean=None, std=None,
                 rank: int = 0, world_size: int = 1):
        if batch_size <= 0:
            raise UserError(f"batch size must be positive, got {batch_size}")
        self.dataset, self.batch_size, self.image_size = dataset, batch_size, image_size
        self.device, self.num_workers = torch.device(device), num_workers
        self.mean, self.std = mean or dataset.mean, std or dataset.std
        per = -(-len(dataset) // world_size)
        self.rows = torch.arange(rank * per, min(len(dataset), (rank + 1) * per))

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def _resize_resident(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        s = self.image_size
        if (h, w) == (s, s):
            return x
        # torchvision Resize(int): short side -> s, long side truncated; CenterCrop rounds.
        rh, rw = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        mats = []
        for n_in, n_out in ((h, rh), (w, rw)):
            full = geometry.resize_matrices(n_in, torch.zeros(1, dtype=torch.int64),
                                            torch.full((1,), n_in), n_out, "bilinear")
            top = int(round((n_out - s) / 2.0))
            mats.append(full[:, top:top + s].expand(len(x), -1, -1).to(x))
        return geometry.apply_separable(x, mats[0], mats[1]).clamp_(0.0, 1.0)

    def __iter__(self):
        if self.dataset.resident:
            stored = self.dataset.images
            for rows in self.rows.split(self.batch_size):
                x = stored[rows.to(stored.device)].to(self.device).to(torch.float32).div_(255.0)
                x = normalize(self._resize_resident(x), self.mean, self.std)
                yield EvalBatch(rows, x, self.dataset.targets[rows].to(self.device))
            return
        task = streaming.EvalTask(self.dataset, self.image_size)
        sampler = [rows.tolist() for rows in self.rows.split(self.batch_size)]
        load = streaming.loader(task, sampler, num_workers=self.num_workers,
                                pin_memory=self.device.type == "cuda")
        for idx, target, x in load:
            x = x.to(self.device, non_blocking=True).to(torch.float32).div_(255.0)
            yield EvalBatch(idx, normalize(x, self.mean, self.std), target.to(self.device))
