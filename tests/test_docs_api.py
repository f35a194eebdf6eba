"""docs/api.md's example runs as written (its first python block)."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
pytestmark = pytest.mark.usefixtures("one_thread")


def test_api_example_runs_as_written(capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert len(block.strip().splitlines()) <= 15
    exec(compile(block, str(DOC), "exec"), {})
    plt.close("all")
    lines = capsys.readouterr().out.strip().splitlines()
    # window=4 over 8 steps: results after steps 3 and 7, each over 4 batches of 32
    assert [line.split()[0] for line in lines[:2]] == ["3", "7"]
    assert all("'n': 128" in line for line in lines[:2])
    assert len(lines) == 3
