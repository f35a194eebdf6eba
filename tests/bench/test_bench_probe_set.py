"""bench/bench_probe_set.py --quick runs and its last line is the JSON of the costs."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_probe_set.py"
pytestmark = pytest.mark.usefixtures("one_thread")


def test_quick_run_prints_the_cost_json(capsys):
    spec = importlib.util.spec_from_file_location("bench_probe_set", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    out = json.loads(lines[-1])
    assert out["quick"] is True and out["step_s"] > 0
    assert set(out["probe"]) == {"8", "16"}
    for p in out["probe"].values():
        assert p["steps"] == pytest.approx(p["s"] / out["step_s"], rel=1e-2, abs=1e-3)
        # the cpu preset: 900 steps, a measurement every 100 and at step 0 -> 10
        assert p["overhead"] == pytest.approx(10 * p["steps"] / 900, rel=1e-2, abs=1e-4)
