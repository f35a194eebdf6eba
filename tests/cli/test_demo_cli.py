"""`dimcollapse demo`: runs everything (short schedule here) and writes report.md."""

from __future__ import annotations

import re

from dimcollapse.cli import main
from dimcollapse.toy import outputs


def test_demo_writes_a_report_whose_figures_exist(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path), "--toy-steps", "200", "--quiet"])
    assert rc == 0
    report = (tmp_path / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(images) == 4
    for rel in images:
        assert (tmp_path / rel).is_file(), rel
    for title in ("Fig 3", "Fig 5", "Fig 11", "Numeric checks"):
        assert title in report
    assert "steps = 200" in report  # the schedule actually run is stated
    assert "report.md" in capsys.readouterr().out


def test_demo_exits_one_when_verify_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "run_checks", lambda seed: [
        {"name": "fake", "error": 1.0, "tolerance": 0.0, "passed": False, "detail": ""}])
    assert main(["demo", "--out", str(tmp_path), "--toy-steps", "100", "--quiet"]) == 1
    assert "FAIL" in (tmp_path / "report.md").read_text()


def test_demo_rejects_bad_steps(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--toy-steps", "0"]) == 2
    assert "--toy-steps" in capsys.readouterr().err
