"""bench/bench_monitor.py --quick runs and its last line is the JSON the lead reads."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_monitor.py"
pytestmark = pytest.mark.usefixtures("one_thread")


def test_quick_run_prints_the_ratio_json(capsys):
    spec = importlib.util.spec_from_file_location("bench_monitor", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    out = json.loads(lines[-1])
    assert out["quick"] is True and out["target"] == 1.03
    assert out["plain_step_s"] > 0 and out["monitored_step_s"] > 0 and out["compute_s"] > 0
    assert out["ratio"] == pytest.approx(out["monitored_step_s"] / out["plain_step_s"],
                                         rel=1e-3)
    # 1 warm-up + 2 rounds x 1 monitored step, each forward carrying both views of 4 pairs
    assert out["rows_pooled"] == {"r": 24, "z": 24}
    assert out["dims"] == {"r": 512, "z": 128}  # the cpu preset: ResNet-18 r, projector z
    assert f"ratio {out['ratio']}x" in lines[-2]
