"""`dimcollapse reproduce` from the command line: a tiny run, the recorded per-arm train
command resolves to the run's config, and bad flags are one line with exit 2."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from evalfakes import make_labelled_tree  # noqa: E402

from dimcollapse.cli import main  # noqa: E402

TINY = ["--image-size", "16", "--batch-size", "16", "--max-steps", "3", "--threads", "1",
        "--set", "loop.precision=\"fp32\"", "--set", "loop.spectrum_every_steps=0"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_cli_run_and_recorded_train_command(tmp_path, capsys, monkeypatch):
    data = make_labelled_tree(tmp_path / "data")
    out = tmp_path / "rep"
    argv = ["reproduce", "d0-sweep", "--d0-grid", "8", "--seeds", "1", "--data-dir", str(data),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out), *TINY]
    monkeypatch.setattr(sys, "argv", ["/venv/bin/dimcollapse", *argv])  # as the console script
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "[1/1] directclr-d0_8 seed 0" in err and "wrote" in err
    res = json.loads((out / "results.json").read_text())
    assert res["metadata"]["command"].startswith("dimcollapse reproduce d0-sweep")
    assert res["budget"]["max_steps"] == 3 and res["seeds"] == [0]
    assert (out / ".gitignore").read_text().count("runs/") == 2
    record = json.loads((out / "runs/directclr-d0_8/seed0/reproduce_arm.json").read_text())
    cmd = shlex.split(record["commands"]["train"])
    assert cmd[:2] == ["dimcollapse", "train"]
    monkeypatch.chdir(out)  # the recorded commands are relative to the results folder
    assert main(cmd[1:] + ["--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "runs/directclr-d0_8/seed0/config.json").read_text())
    assert printed == saved


@pytest.mark.parametrize("argv, message", [
    (["table1", "--seeds", "0"], "--seeds must be at least 1"),
    (["table1", "--preset", "imagenet"], "needs --data-dir"),
    (["d0-sweep", "--d0-grid", "8,x"], "comma-separated integers"),
    (["table1", "--d0", "900"], "does not fit the 512-d representation"),
    (["table1", "--set", "optim.nope=1"], "unknown config key 'optim.nope'"),
    (["table1", "--data-dir", "{tmp}/missing"], "does not exist"),
    (["table1"], "no cifar10 found"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setattr("dimcollapse.reproduce.datasets.candidates", lambda name: [])
    (tmp_path / "d" / "train").mkdir(parents=True)
    (tmp_path / "d" / "test").mkdir()
    argv = [a.format(tmp=tmp_path) for a in argv]
    if "--data-dir" not in argv and argv[0] != "table1" or "--seeds" in argv or "--d0" in argv \
            or "--set" in argv:
        argv += ["--data-dir", str(tmp_path / "d")]
    code = main(["reproduce", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "runs").exists()  # nothing started


def test_max_steps_and_epochs_exclude_each_other(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "table1", "--max-steps", "5", "--epochs", "2", "--out",
              str(tmp_path)])
    assert exc.value.code == 2


def test_collapse_factors_flags_reach_the_target(tmp_path, capsys, monkeypatch):
    """collapse-factors: the cpu preset's default --max-steps is the documented budget, one
    seed, --factors picks factors with their own values; overrides and the cifar preset."""
    from dimcollapse.catalogue import COLLAPSE_FACTORS_CPU_STEPS
    from dimcollapse.reproduce.factors import FACTORS

    seen = {}

    def fake(budget, **kw):
        seen.clear()
        seen.update(kw, budget=budget)
        return {}

    monkeypatch.setattr("dimcollapse.reproduce.factors_pipeline.run_collapse_factors", fake)
    data = make_labelled_tree(tmp_path / "data")
    base = ["reproduce", "collapse-factors", "--data-dir", str(data), "--out",
            str(tmp_path / "cf")]
    assert main(base + ["--factors", "jitter,stem"]) == 0
    assert seen["budget"].max_steps == COLLAPSE_FACTORS_CPU_STEPS == 400
    assert seen["seeds"] == [0] and seen["precision_check"] is True
    assert seen["grid"] == {"jitter": FACTORS["jitter"].values, "stem": FACTORS["stem"].values}
    assert main(base + ["--max-steps", "50", "--seeds", "2", "--no-precision-check"]) == 0
    assert seen["budget"].max_steps == 50 and seen["seeds"] == [0, 1]
    assert seen["grid"] is None and seen["precision_check"] is False
    assert main(base + ["--preset", "cifar", "--epochs", "100"]) == 0
    assert seen["budget"].max_steps is None and seen["budget"].epochs == 100
    assert main(base + ["--factors", "jitter,colour"]) == 2
    assert "unknown ['colour']" in capsys.readouterr().err
