"""Fixtures shared by every test folder."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """One intra-op thread: on a 2-core machine oversubscribed OpenMP threads make the tiny
    models of these tests several times slower, and the subprocess runs use one thread too.
    Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
