"""bench/bench_probe.py without scikit-learn: one line naming the install command, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_probe.py"

# scikit-learn blocked (sys.modules[name] = None makes `import sklearn` raise ImportError)
BLOCKED = ("import runpy, sys; sys.modules['sklearn'] = None; sys.argv = [sys.argv[1]]; "
           "runpy.run_path(sys.argv[0], run_name='__main__')")


def test_missing_sklearn_is_one_line():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", BLOCKED, str(BENCH)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "pip install '.[bench]'" in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""  # nothing was computed before the check
