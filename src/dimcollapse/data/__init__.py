"""Datasets: cifar10/100, stl10, imagefolder; uint8 decode cache; deterministic subsets.

Upstream of everything image-related; never imports views.
"""

from dimcollapse.data.cache import default_cache_dir
from dimcollapse.data.dataset import IMAGENET_MEAN, IMAGENET_STD, ImageDataset
from dimcollapse.data.registry import DATASETS, build_dataset, register_dataset
from dimcollapse.data.subset import balanced_subset

__all__ = ["DATASETS", "IMAGENET_MEAN", "IMAGENET_STD", "ImageDataset", "balanced_subset",
           "build_dataset", "default_cache_dir", "register_dataset"]
