"""Fixtures for view tests (helpers in view_fakes.py, a uniquely named module)."""

import numpy as np
import pytest
from PIL import Image
from view_fakes import smooth_images


@pytest.fixture
def images32():
    return smooth_images(48, 32, 32, seed=1)


@pytest.fixture
def tree_mixed(tmp_path):
    """ImageFolder tree of 10 PNGs with mixed sizes (for the streaming path)."""
    root = tmp_path / "tree"
    rng = np.random.default_rng(0)
    sizes = [(40, 52), (37, 30), (48, 48), (33, 61), (50, 41)]
    for k in range(10):
        cls = root / "train" / f"c{k % 2}"
        cls.mkdir(parents=True, exist_ok=True)
        h, w = sizes[k % 5]
        arr = smooth_images(1, h, w, seed=k)[0].permute(1, 2, 0).numpy()
        arr = (arr.astype(np.int16) + rng.integers(-3, 4, arr.shape)).clip(0, 255)
        Image.fromarray(arr.astype(np.uint8)).save(cls / f"{k}.png")
    return root
