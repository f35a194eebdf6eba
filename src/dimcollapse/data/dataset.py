"""ImageDataset: the one dataset type the views and the eval code consume."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from dimcollapse.data.folder import open_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageDataset:
    """Images with integer class targets, either resident in memory or streamed from files.

    resident: `images` is uint8 [N, 3, H, W] (RGB; CPU, possibly a memory map, or on a GPU after
    `to(device)`) and batches are cut from it directly. Streaming: `files[i]` is decoded on
    access (in loader workers).
    Both: `targets` LongTensor [N] (-1 = unlabeled), `classes`, `mean`/`std` (RGB, for
    normalisation), `source_indices` LongTensor [N] = rows of the full split (after a subset).
    `ds[i]` -> (PIL RGB image, int target) in both cases, as torchvision datasets.
    """

    def __init__(self, *, name: str, split: str, root: Path, classes: Sequence[str],
                 targets: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 images: torch.Tensor | None = None, files: Sequence[Path] | None = None,
                 source_indices: torch.Tensor | None = None, note: str | None = None):
        if (images is None) == (files is None):
            raise ValueError("pass exactly one of images (resident) or files (streaming)")
        self.name, self.split, self.root = name, split, Path(root)
        self.note = note  # one line about how the data was taken (e.g. not CIFAR-10: own stats)
        self.classes = list(classes)
        self.targets = targets.to(torch.int64)
        self.images = images
        self.files = None if files is None else list(files)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        n = len(self.targets)
        if images is not None and images.shape[0] != n or files is not None and len(files) != n:
            raise ValueError("images/files and targets differ in length")
        self.source_indices = (torch.arange(n) if source_indices is None
                               else source_indices.to(torch.int64))

    @property
    def resident(self) -> bool:
        return self.images is not None

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of every image when resident; None when streaming (sizes vary)."""
        return None if self.images is None else (self.images.shape[-2], self.images.shape[-1])

    def __len__(self) -> int:
        return len(self.targets)

    def load_image(self, i: int) -> Image.Image:
        """Image i as a PIL RGB image (decoded from its file when streaming)."""
        if self.images is not None:
            pixels = self.images[i].permute(1, 2, 0).contiguous().cpu().numpy()
            return Image.fromarray(pixels, "RGB")
        assert self.files is not None  # __init__ requires images or files
        return open_rgb(self.files[i])

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return self.load_image(i), int(self.targets[i])

    def to(self, device: str | torch.device) -> ImageDataset:
        """This dataset with its uint8 images in `device`'s memory (resident datasets only).

        On a GPU, batches are then indexed and augmented there with no host-to-device copy per
        step (CIFAR-10's train split is 150 MB of uint8). Targets and source_indices stay on the
        CPU (the batch indices are drawn there). Returns self when nothing moves.
        """
        if self.images is None:
            raise ValueError("only a resident dataset can be moved to a device")
        device = torch.device(device)
        if self.images.device == device:
            return self
        return ImageDataset(
            name=self.name, split=self.split, root=self.root, classes=self.classes,
            targets=self.targets, mean=self.mean, std=self.std,
            images=self.images.to(device), source_indices=self.source_indices)

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """Rows `indices` (LongTensor) of this dataset, as a new ImageDataset."""
        indices = indices.to(torch.int64)
        return ImageDataset(
            name=self.name, split=self.split, root=self.root, classes=self.classes,
            targets=self.targets[indices], mean=self.mean, std=self.std,
            images=None if self.images is None else self.images[indices.to(self.images.device)],
            files=None if self.files is None else [self.files[i] for i in indices.tolist()],
            source_indices=self.source_indices[indices], note=self.note)

    def __repr__(self) -> str:
        kind = "streaming" if self.images is None else f"resident {tuple(self.images.shape)}"
        return (f"ImageDataset({self.name}/{self.split}, n={len(self)}, "
                f"classes={len(self.classes)}, {kind}, root={self.root})")
