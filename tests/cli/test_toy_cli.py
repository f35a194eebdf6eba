"""`dimcollapse toy`: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dimcollapse.cli import main
from dimcollapse.toy import outputs


def test_strong_aug_writes_json_and_png_with_requested_k(tmp_path, capsys):
    rc = main(["toy", "strong-aug", "--out", str(tmp_path), "--steps", "300", "--k", "0", "2",
               "--quiet"])
    assert rc == 0
    res = json.loads((tmp_path / "strong_aug.json").read_text())
    assert [r["k"] for r in res["runs"]] == [0.0, 2.0]
    assert res["config"]["steps"] == 300 and res["config"]["loss"] == "paper"
    assert (tmp_path / "strong_aug.png").is_file()
    out = capsys.readouterr().out
    assert "strong_aug.json" in out and "At k = 2" in out


def test_official_loss_and_lr_flags_reach_the_config(tmp_path):
    rc = main(["toy", "implicit-reg", "--out", str(tmp_path), "--steps", "200", "--loss",
               "official", "--lr", "0.01", "0.02", "--quiet"])
    assert rc == 0
    res = json.loads((tmp_path / "implicit_reg.json").read_text())
    assert res["config"]["loss"] == "official" and res["config"]["lrs"] == [0.01, 0.02]
    assert [r["lr"] for r in res["runs"]] == [0.01, 0.02]
    for png in ("implicit_reg_alignment.png", "implicit_reg_trajectories.png"):
        assert (tmp_path / png).is_file()


def test_depth_flags(tmp_path):
    rc = main(["toy", "depth", "--out", str(tmp_path), "--steps", "100", "--depths", "1", "2",
               "--init", "orthogonal", "--quiet"])
    assert rc == 0
    res = json.loads((tmp_path / "depth.json").read_text())
    assert sorted({r["layers"] for r in res["runs"]}) == [1, 2]
    assert res["config"]["init"] == "orthogonal"


def test_verify_json_lists_checks_and_exits_zero(tmp_path, capsys):
    rc = main(["toy", "verify", "--json", "--out", str(tmp_path)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"name", "error", "tolerance", "passed"} <= set(printed["checks"][0])
    assert all(c["passed"] for c in printed["checks"])
    assert json.loads((tmp_path / "verify.json").read_text())["passed"] is True


def test_verify_exits_one_when_a_check_fails(monkeypatch, capsys):
    failing = [{"name": "fake", "error": 1.0, "tolerance": 1e-10, "passed": False,
                "detail": ""}]
    monkeypatch.setattr(outputs, "run_checks", lambda seed: failing)
    assert main(["toy", "verify"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment", [
    (["toy", "strong-aug", "--steps", "0"], "--steps"),
    (["toy", "strong-aug", "--k", "-1"], "--k"),
    (["toy", "implicit-reg", "--lr", "0"], "--lr"),
    (["toy", "depth", "--depths", "0"], "--depths"),
])
def test_bad_values_give_one_line_errors_and_exit_2(tmp_path, capsys, argv, fragment):
    assert main([*argv, "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert not (tmp_path / "strong_aug.json").exists()


def test_help_runs_as_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "dimcollapse", "toy", "strong-aug", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--k" in out.stdout and "--loss" in out.stdout


def test_out_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["toy", "depth", "--out", str(f), "--steps", "10", "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err
