import pytest
import torch
from trainhelpers import make_tree


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine oversubscribed OpenMP threads make these
    tiny models several times slower, and the subprocess runs use one thread too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_data(tmp_path):
    """A 4-class, 48-image tree of 16x16 JPEGs under tmp_path/data."""
    return make_tree(tmp_path / "data")
