import pytest
from trainhelpers import make_tree


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every training test runs with one intra-op thread (tests/conftest.py)."""


@pytest.fixture
def tiny_data(tmp_path):
    """A 4-class, 48-image tree of 16x16 JPEGs under tmp_path/data."""
    return make_tree(tmp_path / "data")
