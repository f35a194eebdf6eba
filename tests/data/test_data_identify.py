"""A 32 px ImageFolder tree given as cifar10 that is not CIFAR-10 is named as what it is and
normalised with its own train statistics (not CIFAR-10's), saying so in one line."""

from __future__ import annotations

import numpy as np
from data_fakes import write_tree

from dimcollapse.data import build_dataset
from dimcollapse.data.identify import CIFAR10_CLASSES, channel_stats, not_cifar_reason
from dimcollapse.data.registry import CIFAR10_MEAN, CIFAR10_STD


def test_channel_stats_against_the_formula():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (37, 3, 5, 4), dtype=np.uint8)
    mean, std = channel_stats(x, chunk=8)
    f = x.astype(np.float64) / 255
    assert np.allclose(mean, f.mean(axis=(0, 2, 3)), atol=5e-5)
    assert np.allclose(std, f.std(axis=(0, 2, 3)), atol=5e-5)
    assert channel_stats(x, chunk=1000) == (mean, std)  # chunking does not change a digit


def test_not_cifar_reason():
    assert not_cifar_reason("cifar10", list(CIFAR10_CLASSES), (32, 32)) is None
    assert "200 classes" in not_cifar_reason("cifar10", [f"n{i:03d}" for i in range(200)],
                                             (32, 32))
    assert "not 32x32" in not_cifar_reason("cifar10", list(CIFAR10_CLASSES), (64, 64))
    assert not_cifar_reason("cifar100", [str(i) for i in range(100)], (32, 32)) is None


def test_other_tree_as_cifar10_gets_its_own_name_and_stats(tmp_path):
    root = tmp_path / "tiny200"
    names = {f"n{i:03d}": 2 for i in range(12)}
    train = write_tree(root / "train", names, size=(32, 32), seed=1)
    write_tree(root / "test", {k: 1 for k in names}, size=(32, 32), seed=2)
    ds = build_dataset("cifar10", root, "train", cache_dir=tmp_path / "cache")
    assert ds.name == "imagefolder"
    pixels = np.stack([a.transpose(2, 0, 1) for a in train.values()])
    assert ds.mean == channel_stats(pixels)[0] and ds.std == channel_stats(pixels)[1]
    assert ds.mean != CIFAR10_MEAN and ds.std != CIFAR10_STD
    assert "is not cifar10 (it has 12 classes" in ds.note and "\n" not in ds.note
    test = build_dataset("cifar10", root, "test", cache_dir=tmp_path / "cache")
    assert (test.mean, test.std) == (ds.mean, ds.std)  # the train split's, for both splits
    sub = ds.subset(ds.targets.argsort()[:4])
    assert sub.note == ds.note and sub.name == "imagefolder"


def test_a_cifar10_tree_keeps_cifar10(tmp_path):
    root = tmp_path / "c10"
    write_tree(root / "train", {c: 1 for c in CIFAR10_CLASSES}, size=(32, 32))
    ds = build_dataset("cifar10", root, "train", cache_dir=tmp_path / "cache")
    assert ds.name == "cifar10" and ds.note is None
    assert (ds.mean, ds.std) == (CIFAR10_MEAN, CIFAR10_STD)
