"""Run the monitor's numpy products on one BLAS thread, so they do not slow the training step.

numpy's OpenBLAS keeps its worker threads spinning for a while after each product; inside a
training loop they take the cores from torch's own threads. Measured with
`bench/bench_monitor.py` on this 2-core CPU (ResNet-18, 64 pairs at 32 px, bf16, r and z
watched every step): the monitored step cost 1.99x the plain one with numpy's default two BLAS
threads, 0.98x with one. The monitor's Gram updates are small ((rows, d) with rows a batch), so
one thread loses nothing, and OpenBLAS's product is bit-identical at any thread count (its
gemm splits rows and columns, not the summed dimension). `dimcollapse spectrum` on large files
keeps every BLAS thread: only the monitor uses this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

_CONTROLLER: Any = None


def _controller() -> Any:
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController  # scans the loaded BLAS libraries once

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit numpy's BLAS to one thread inside the block (about 13 us to enter and leave)."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
