"""README's "Use it in your own training" examples run as written (each block that follows a
`<!-- readme-snippet: NAME -->` marker), in seconds on the CPU."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
pytestmark = pytest.mark.usefixtures("one_thread")


def snippet(name: str) -> str:
    text = README.read_text()
    found = re.findall(rf"<!-- readme-snippet: {name} -->\n```python\n(.*?)```", text, re.S)
    assert len(found) == 1, f"README needs exactly one {name!r} snippet"
    block = found[0]
    assert len(block.strip().splitlines()) <= 15  # the promise: 15 lines at most
    return block


def run(block: str, name: str) -> dict:
    namespace: dict = {"__name__": "__main__"}
    exec(compile(block, f"README.md:{name}", "exec"), namespace)
    return namespace


def test_section_follows_the_commands_table():
    text = README.read_text()
    assert text.index("## Commands") < text.index("## Use it in your own training") < text.index(
        "## Results")


def test_pytorch_snippet(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(snippet("pytorch"), "pytorch")
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["10", "20", "30"]
    for line in lines:  # 20 forward calls of 64 rows per result, both names
        assert line.count("'n': 1280") == 2 and "'rankme'" in line and "'collapsed_dims'" in line


def test_lightning_snippet(capsys, tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.chdir(tmp_path)
    ns = run(snippet("lightning"), "lightning")
    last = ns["monitor"].last
    # step 8: the 4 batches of steps 5..8, 2 views of 64 rows each
    assert last["collapse/r/n"] == last["collapse/z/n"] == 512.0
    assert 1 < last["collapse/z/rankme"] <= 16 and 1 < last["collapse/r/rankme"] <= 64
    assert ns["monitor"].monitor.ready() is False  # reset after the result
    assert "collapse/z/rankme" in capsys.readouterr().out
    assert list(tmp_path.glob("lightning_logs/version_0/*"))  # the default logger wrote there
