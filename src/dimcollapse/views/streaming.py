"""Worker-side work for streaming datasets: decode a file and cut fixed-size uint8 crops.

Loader workers decode each image, draw its crop boxes from the same counter RNG as the resident
path (they depend on the image's size, known only after decoding), resize with PIL exactly as
torchvision's PIL path (crop, then antialiased resize) and return uint8 (2, 3, S, S). Flip and
the colour ops then run batched in the main process (`TwoViews.from_crops`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np
import torch

from dimcollapse.data.dataset import ImageDataset
from dimcollapse.errors import UserError
from dimcollapse.views.presets import TwoViews


def _pil_interp(name: str):
    # torchvision: only the streaming (PIL) path uses it
    from torchvision.transforms import InterpolationMode

    return {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}[name]


def _to_uint8_chw(img) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


class CropTask(torch.utils.data.Dataset):
    """Map-style dataset over keys (step, index) -> (index, target, uint8 crops (2, 3, S, S))."""

    def __init__(self, dataset: ImageDataset, views: TwoViews, seed: int):
        self.dataset, self.views, self.seed = dataset, views, seed

    def __len__(self) -> int:  # keys are (step, index) pairs, not positions
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        # torchvision: only the streaming (PIL) path uses it
        from torchvision.transforms import functional as F

        step, i = key
        img = self.dataset.load_image(i)
        width, height = img.size
        crops = []
        for view in (0, 1):
            p = self.views.params(view, seed=self.seed, step=step, index=torch.tensor([i]),
                                  height=height, width=width)
            top, left, h, w = p.boxes[0].tolist()
            size = [self.views.image_size] * 2
            crops.append(_to_uint8_chw(F.resized_crop(
                img, top, left, h, w, size, _pil_interp(self.views.specs[view].interpolation),
                antialias=True)))
        return i, int(self.dataset.targets[i]), torch.stack(crops)


class EvalTask(torch.utils.data.Dataset):
    """Image i -> (i, target, uint8 (3, S, S)): resize the short side to S / 0.875 (256 for 224,
    bilinear, antialiased) and centre-crop S, torchvision's usual ImageNet evaluation."""

    def __init__(self, dataset: ImageDataset, image_size: int):
        self.dataset, self.image_size = dataset, image_size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        # torchvision: only the streaming (PIL) path uses it
        from torchvision.transforms import functional as F

        img = self.dataset.load_image(i)
        img = F.resize(img, round(self.image_size / 0.875), _pil_interp("bilinear"),
                       antialias=True)
        img = F.center_crop(img, self.image_size)
        return i, int(self.dataset.targets[i]), _to_uint8_chw(img)


def collate(items):
    idx, target, x = zip(*items, strict=True)
    return torch.tensor(idx), torch.tensor(target), torch.stack(x)


class StepKeys:
    """Batch sampler: for step = start, start+1, ...: [(step, i) for i in this rank's indices]."""

    def __init__(self, indices_of_step: Callable[[int], torch.Tensor], start_step: int):
        self.indices_of_step, self.start_step = indices_of_step, start_step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in itertools.count(self.start_step):
            yield [(step, i) for i in self.indices_of_step(step).tolist()]


def loader(task, batch_sampler, *, num_workers: int, pin_memory: bool):
    """DataLoader over `task`; yields its batches, re-raising a worker's UserError as one line."""
    load = torch.utils.data.DataLoader(
        task, batch_sampler=batch_sampler, num_workers=num_workers, collate_fn=collate,
        pin_memory=pin_memory, prefetch_factor=4 if num_workers else None,
        persistent_workers=False)
    try:
        yield from load
    except UserError as err:
        # A worker's exception arrives as "Caught UserError in DataLoader worker ...\n<the
        # original traceback>"; its last line holds the message the user needs.
        lines = [ln for ln in str(err).splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        marker = "UserError: "
        raise UserError(last.split(marker, 1)[1] if marker in last else str(err)) from None
