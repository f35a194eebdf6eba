"""A run that dies says so in run.json: `failed` with the reason when the process can write it
(a UserError mid-run), `interrupted` when it could not (kill -9), seen by the next reader; a
rerun says it resumes and from where."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from trainhelpers import REPO, cli_args, cli_env, make_tree, tiny_overrides

from dimcollapse.errors import UserError
from dimcollapse.eval.target import resolve_target
from dimcollapse.train import run_training


def test_user_error_mid_run_is_recorded_as_failed(tmp_path):
    data = make_tree(tmp_path / "data")
    bad = data / "train" / "class1" / "0003.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # a truncated JPEG: found only when decoded
    over = tiny_overrides(data, tmp_path / "cache", **{"data.dataset": "imagefolder",
                                                       "loop.max_steps": 5, "data.num_workers": 0,
                                                       "loop.spectrum_every_steps": 0})
    with pytest.raises(UserError, match="0003.jpg"):
        run_training(tmp_path / "run", overrides=over, quiet=True)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "failed"
    assert "0003.jpg" in run["error"] and "\n" not in run["error"]


@pytest.mark.slow
def test_sigkill_reads_as_interrupted_and_rerun_says_resuming(tmp_path):
    data = make_tree(tmp_path / "data")
    over = tiny_overrides(data, tmp_path / "cache", **{"loop.max_steps": 400,
                                                       "loop.spectrum_every_steps": 0})
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "dimcollapse", "train", *cli_args(over),
                             "--out", str(out), "--quiet"], cwd=REPO, env=cli_env(),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint_last.pt").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert json.loads((out / "run.json").read_text())["status"] == "running"  # left behind
    target = resolve_target(out)  # what probe / spectrum RUN / compare / reproduce read
    assert target.run_status == "interrupted" and "interrupted" in target.status_note()
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted"
    assert f"step {run['checkpoint_step']}" in run["interrupted_reason"]

    # a plain rerun of the same command says it resumes, from which file and step
    short = {**over, "loop.max_steps": 400}
    rerun = subprocess.Popen([sys.executable, "-m", "dimcollapse", "train", *cli_args(short),
                              "--out", str(out)], cwd=REPO, env=cli_env(),
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = ""
    while "resuming" not in line and "run folder" not in line:
        line = rerun.stderr.readline()
        assert line, "the rerun ended without a start line"
    rerun.kill()
    rerun.communicate(timeout=60)
    step = run["checkpoint_step"]
    assert f"resuming from {out / 'checkpoint_last.pt'} at step {step}" in line
    assert "previous run is interrupted" in line
