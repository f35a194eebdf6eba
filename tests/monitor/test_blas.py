"""The monitor's one-BLAS-thread guard: one thread inside, restored after, same bits."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info

from dimcollapse import CollapseMonitor
from dimcollapse.monitor.blas import one_blas_thread
from dimcollapse.spectrum import SpectrumAccumulator


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_one_thread_inside_and_restored_after():
    before = _blas_threads()
    with one_blas_thread():
        assert set(_blas_threads()) <= {1}
    assert _blas_threads() == before


def test_monitor_sums_equal_an_unguarded_accumulator_bit_for_bit():
    rng = np.random.default_rng(3)
    rows = [rng.standard_normal((256, 96)) for _ in range(3)]
    monitor = CollapseMonitor(metrics=("collapsed_dims",))
    acc = SpectrumAccumulator(96, normalize=True, raw_max_samples=0)
    for x in rows:
        monitor.update("z", x)
        acc.update(x)
    ev = monitor.spectra()["z"].eigenvalues
    np.testing.assert_array_equal(ev, acc.eigenvalues())
