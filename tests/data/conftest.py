"""Fixtures for data tests (writers in data_fakes.py, a uniquely named module)."""

import pytest
from data_fakes import write_tree


@pytest.fixture
def cifar_tree(tmp_path):
    """An ImageFolder-layout CIFAR-10 (train: 3 classes x 4 PNGs, test: 3 x 2), 8x8 pixels."""
    root = tmp_path / "cifar10"
    train = write_tree(root / "train", {"cat": 4, "dog": 4, "ship": 4}, seed=1)
    test = write_tree(root / "test", {"cat": 2, "dog": 2, "ship": 2}, seed=2)
    return root, train, test
