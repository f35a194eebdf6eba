"""`dimcollapse demo`: runs everything (short schedule here) and writes report.md."""

from __future__ import annotations

import re

from dimcollapse.cli import main
from dimcollapse.toy import outputs


def test_demo_writes_a_report_whose_figures_exist(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path), "--toy-steps", "200", "--quiet", "--no-images"])
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
    assert main(["demo", "--out", str(tmp_path), "--toy-steps", "100", "--quiet",
                 "--no-images"]) == 1
    assert "FAIL" in (tmp_path / "report.md").read_text()


def test_demo_rejects_bad_steps(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--toy-steps", "0"]) == 2
    assert "--toy-steps" in capsys.readouterr().err


def _tiny_tree(root):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
    from evalfakes import make_labelled_tree

    return make_labelled_tree(root)


def test_demo_image_section_with_a_dataset(tmp_path, capsys, monkeypatch):
    import json

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    data = _tiny_tree(tmp_path / "data")
    monkeypatch.setenv("DIMCOLLAPSE_CACHE", str(tmp_path / "cache"))
    rc = main(["demo", "--out", str(tmp_path / "demo"), "--toy-steps", "50", "--quiet",
               "--data-dir", str(data), "--image-steps", "2", "--image-batch", "16",
               "--image-size", "16"])
    assert rc == 0
    summary = json.loads((tmp_path / "demo" / "images" / "images.json").read_text())
    assert summary["status"] == "complete"
    assert [r["key"] for r in summary["runs"]] == ["directclr-d0_90", "none"]
    for r in summary["runs"]:
        spec = json.loads((tmp_path / "demo" / "images" / r["run_dir"] /
                           "spectrum_representation" / "spectrum.json").read_text())
        assert r["spectrum_r"]["collapsed_dims"] == spec["collapsed_dims"]
        assert r["train"]["steps"] == 2
    report = (tmp_path / "demo" / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert "images/spectra.png" in images and len(images) == 5
    assert (tmp_path / "demo" / "images" / "spectra.png").read_bytes()[:4] == b"\x89PNG"
    for r in summary["runs"]:
        assert f"{r['probe']['top1']:.2f}%" in report  # readings are the numbers on disk
    assert "Image models" in report and "2 steps" in report
    torch.set_num_threads(before)


def test_demo_without_data_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("dimcollapse.reproduce.datasets.candidates", lambda name: [])
    monkeypatch.delenv("DIMCOLLAPSE_DATA", raising=False)
    rc = main(["demo", "--out", str(tmp_path), "--toy-steps", "50", "--quiet"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "no CIFAR-10 found" in err and "--download" in err
    report = (tmp_path / "report.md").read_text()
    assert "Fig 3" in report  # the theory part still ran
    assert "not run: no CIFAR-10 folder found" in report and "--download" in report
