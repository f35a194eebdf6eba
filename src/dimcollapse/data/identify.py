"""Is an ImageFolder tree given as `cifar10`/`cifar100` really that dataset? And if not, its own
normalisation statistics.

A `--data-dir` of some other 32 px tree (say 200 classes of 100,000 images) must not be trained
on as "cifar10" with CIFAR-10's mean and std. A tree is taken as CIFAR-10 when its class folders
are exactly CIFAR-10's ten class names and its images are 32 x 32; as CIFAR-100 when it has 100
class folders of 32 x 32 images (the hundred names are not carried here). Any other tree keeps
working, named `imagefolder` (what it is) and normalised with the per-channel mean and std of
its own decoded train split (uint8 cache, float64 sums: the same numbers on every run).
"""

from __future__ import annotations

import numpy as np

# torchvision's CIFAR10.classes, the folder names of the usual ImageFolder export
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def not_cifar_reason(name: str, classes: list[str], image_hw: tuple[int, int]) -> str | None:
    """Why a folder tree is not dataset `name` ("cifar10" | "cifar100"), or None if it is."""
    size = "x".join(str(s) for s in image_hw)
    if tuple(image_hw) != (32, 32):
        return f"its images are {size}, not 32x32"
    if name == "cifar10" and sorted(classes) != sorted(CIFAR10_CLASSES):
        shown = ", ".join(sorted(classes)[:3]) + (", ..." if len(classes) > 3 else "")
        return (f"it has {len(classes)} classes ({shown}), not CIFAR-10's 10 "
                f"({', '.join(CIFAR10_CLASSES[:3])}, ...)")
    if name == "cifar100" and len(classes) != 100:
        return f"it has {len(classes)} classes, not CIFAR-100's 100"
    return None


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[tuple[float, ...],
                                                                  tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images on [0, 1] pixels.

    Shape: (N, 3, H, W) uint8 -> ((3,), (3,)). Exact integer sums of the pixel values and their
    squares (int64), so the result does not depend on chunking or threads; rounded to 4
    decimals, as the CIFAR constants are.
    """
    n, c = images.shape[0], images.shape[1]
    s1 = np.zeros(c, dtype=np.int64)
    s2 = np.zeros(c, dtype=np.int64)
    for i in range(0, n, chunk):
        x = np.asarray(images[i:i + chunk], dtype=np.int64)
        s1 += x.sum(axis=(0, 2, 3))
        s2 += (x * x).sum(axis=(0, 2, 3))
    count = n * images.shape[2] * images.shape[3]
    mean = s1 / (255.0 * count)
    var = s2 / (255.0 ** 2 * count) - mean ** 2
    std = np.sqrt(np.maximum(var, 0.0))
    return tuple(round(float(m), 4) for m in mean), tuple(round(float(s), 4) for s in std)
