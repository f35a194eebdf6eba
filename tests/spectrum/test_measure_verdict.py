"""The new Spectrum metrics (effective rank, NESum, T) and the collapse verdict, through
`measure`, the summary, the metric functions and the monitor, against slow references."""

import json
import math

import numpy as np
import pytest
import torch

import dimcollapse
from dimcollapse.errors import UserError
from dimcollapse.report.spectrum_plot import write_spectrum_report
from dimcollapse.spectrum import SpectrumAccumulator
from dimcollapse.spectrum.lidar import lidar as lidar_of_views
from dimcollapse.spectrum.measure import METRICS

NEW = ("effective_rank", "nesum", "normalized_total_variance", "collapse")


def slow_erank(eigenvalues):
    """Roy & Vetterli 2007 on the covariance's singular values (= its eigenvalues), a loop."""
    total = sum(max(float(v), 0.0) for v in eigenvalues)
    h = 0.0
    for v in eigenvalues:
        p = max(float(v), 0.0) / total
        if p > 0:
            h -= p * math.log(p)
    return math.exp(h)


def slow_nesum(eigenvalues):
    """He & Ozay 2022, Def. 4.1: sum_i lambda_i / lambda_1, a loop."""
    top = max(float(v) for v in eigenvalues)
    return sum(max(float(v), 0.0) / top for v in eigenvalues)


def slow_total_variance(z):
    """(1/N) sum_i ||u_i - u_bar||^2 of u_i = z_i / ||z_i||, row by row."""
    rows = [np.asarray(r, dtype=np.float64) / math.sqrt(sum(float(v) ** 2 for v in r))
            for r in np.asarray(z, dtype=np.float64)]
    mean = sum(rows) / len(rows)
    return sum(float(np.sum((r - mean) ** 2)) for r in rows) / len(rows)


def test_new_metrics_equal_their_slow_references(make_embeddings, ref):
    z = make_embeddings(np.random.default_rng(30), 300, 12, offset=1.0, decay=0.3)
    s = dimcollapse.measure(z)
    ev = ref.spectrum(z, normalize=True)
    assert s.effective_rank == pytest.approx(slow_erank(ev), rel=1e-10)
    assert s.nesum == pytest.approx(slow_nesum(ev), rel=1e-10)
    assert s.normalized_total_variance == pytest.approx(slow_total_variance(z), rel=1e-10)
    assert 1 < s.effective_rank < 12 and 1 < s.nesum < s.effective_rank  # decaying spectrum
    assert set(NEW) <= set(METRICS) and set(NEW) <= set(s.metrics())
    # the same in the summary (spectrum.json) and from the metric functions
    d = s.to_dict()
    assert [d[k] for k in NEW] == [getattr(s, k) for k in NEW]
    assert dimcollapse.effective_rank(z) == pytest.approx(slow_erank(ev), rel=1e-10)
    assert dimcollapse.effective_rank(s) == s.effective_rank
    assert dimcollapse.nesum(z) == pytest.approx(slow_nesum(ev), rel=1e-10)
    assert dimcollapse.nesum(s) == s.nesum
    raw = ref.spectrum(z, normalize=False)
    assert dimcollapse.effective_rank(z, normalize=False) == pytest.approx(slow_erank(raw),
                                                                           rel=1e-10)
    # ddof = 1 changes the eigenvalues' scale, not T (defined with ddof = 0) nor erank / NESum
    s1 = dimcollapse.measure(z, ddof=1)
    assert s1.normalized_total_variance == pytest.approx(s.normalized_total_variance, rel=1e-12)
    assert s1.effective_rank == pytest.approx(s.effective_rank, rel=1e-12)


def test_verdict_complete_when_all_rows_point_one_way():
    rng = np.random.default_rng(31)
    v = rng.standard_normal(16)
    z = rng.uniform(1, 3, size=(200, 1)) * v + 1e-4 * rng.standard_normal((200, 16))
    s = dimcollapse.measure(z)
    assert s.normalized_total_variance < 1e-4 and s.collapse == "complete"
    assert s.normalized_total_variance == pytest.approx(slow_total_variance(z), rel=1e-8)
    # identical rows: C = 0, erank and NESum undefined (None), still "complete"
    same = dimcollapse.measure(np.tile(v, (10, 1)))
    assert same.collapse == "complete" and same.effective_rank is None and same.nesum is None
    assert same.normalized_total_variance == 0.0
    # spread 100x wider (T ~ 1e-4 x 1e4 = 1e-0 scale): no longer complete
    wide = dimcollapse.measure(rng.uniform(1, 3, size=(200, 1)) * v
                               + 1e-1 * rng.standard_normal((200, 16)))
    assert wide.collapse != "complete"


def test_verdict_dimensional_and_none():
    rng = np.random.default_rng(32)
    low = rng.standard_normal((300, 3)) @ rng.standard_normal((3, 10))  # rank 3 of 10
    s = dimcollapse.measure(low)
    assert s.collapsed_dims == 7 and s.collapse == "dimensional"
    assert s.effective_rank == pytest.approx(slow_erank(s.eigenvalues), rel=1e-10)
    assert s.effective_rank < 3 + 1e-6
    full = dimcollapse.measure(rng.standard_normal((300, 10)))
    assert full.collapsed_dims == 0 and full.collapse == "none"
    # N <= d: the d - N + 1 zeros of 5 isotropic rows are the sample size, not collapse
    few = dimcollapse.measure(rng.standard_normal((5, 16)))
    assert few.summary.unmeasured_dims == 12 and few.collapse == "none"
    few_low = dimcollapse.measure(rng.standard_normal((5, 2)) @ rng.standard_normal((2, 16)))
    assert few_low.collapse == "dimensional"


def test_to_dict_equals_the_written_spectrum_json_new_keys_last(make_embeddings, tmp_path):
    z = make_embeddings(np.random.default_rng(33), 80, 6)
    s = dimcollapse.measure(z)
    acc = SpectrumAccumulator(6, normalize=True)
    acc.update(z)
    json_path, _ = write_spectrum_report(acc.summary(), tmp_path, metadata={"x": 1})
    written = json.loads(json_path.read_text())
    del written["metadata"]
    assert list(s.to_dict()) == list(written)
    assert list(written)[-5:] == ["effective_rank", "nesum", "normalized_total_variance",
                                  "complete_threshold", "collapse"]
    assert json.loads(json.dumps(s.to_dict())) == written


def test_monitor_selects_and_computes_the_new_metrics():
    rng = np.random.default_rng(34)
    basis = rng.standard_normal((3, 8))
    batches = [rng.standard_normal((40, 3)) @ basis for _ in range(3)]
    monitor = dimcollapse.CollapseMonitor(metrics=NEW)
    for b in batches:
        monitor.update("z", torch.from_numpy(b))
    got = monitor.compute()["z"]
    want = dimcollapse.measure(np.concatenate(batches))
    assert list(got) == [*NEW, "n"] and got["n"] == 120
    assert got["collapse"] == "dimensional"
    for k in NEW[:3]:
        assert got[k] == pytest.approx(getattr(want, k), rel=1e-10)


def test_lidar_function_takes_views_not_a_spectrum():
    rng = np.random.default_rng(35)
    views = rng.standard_normal((20, 1, 5)) + 0.3 * rng.standard_normal((20, 4, 5))
    assert dimcollapse.lidar(views) == lidar_of_views(views)
    assert dimcollapse.lidar(torch.from_numpy(views), delta=0.0) == lidar_of_views(views,
                                                                                   delta=0.0)
    with pytest.raises(UserError, match="not a Spectrum"):
        dimcollapse.lidar(dimcollapse.measure(views[:, 0]))
