"""The CUDA tests: every test here is marked `cuda` and skipped when no GPU is visible.

They prove the paths that only a GPU runs (autocast on CUDA, nccl, torch's SyncBatchNorm
kernels, the views, the spectrum and the probe on CUDA tensors) against the CPU code that the
rest of the suite tests. `bench/gpu_check.sh` runs them on a lent GPU (`pytest -m cuda`).

DIMCOLLAPSE_CUDA_TESTS_ON_CPU=1 runs them with the CPU standing in for the GPU: a dry run of
the tests' own code for a machine without one (the comparisons are then CPU against CPU, and
the nccl tests still skip). Comparisons run with TF32 off, so float32 means float32.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
for sub in ("views", "train", "eval"):  # the suite's fake-data helpers
    path = str(HERE.parent / sub)
    if path not in sys.path:
        sys.path.append(path)

ON_CPU = os.environ.get("DIMCOLLAPSE_CUDA_TESTS_ON_CPU") == "1"


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="no CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.cuda)
            if not (torch.cuda.is_available() or ON_CPU):
                item.add_marker(skip)


@pytest.fixture
def accel() -> torch.device:
    """The GPU under test (cuda:0), or the CPU under DIMCOLLAPSE_CUDA_TESTS_ON_CPU=1."""
    return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")


@pytest.fixture(autouse=True)
def full_float32():
    """float32 matmuls and convolutions without TF32 (its 10-bit mantissa would dominate the
    CUDA-vs-CPU differences), and cuDNN's deterministic algorithms."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    yield
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = saved

