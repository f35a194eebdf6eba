"""Documented wall times of the user-facing commands say they are quiet-machine numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a claim of how long `make demo`, `make test`, `dimcollapse demo` or a cpu run takes
CLAIM = re.compile(r"(make (demo|test)|dimcollapse demo|about \d+ minutes|min wall)")
TIME = re.compile(r"\b\d+(\.\d+)?(-\d+)? ?(s|min|minutes)\b")


def _paragraphs(path: Path):
    text = path.read_text()
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_timings_say_quiet_machine(path):
    for para in _paragraphs(path):
        if CLAIM.search(para) and TIME.search(para) and "|" not in para.splitlines()[0]:
            assert "quiet" in para, f"{path.name}: a timing without 'quiet machine':\n{para}"
