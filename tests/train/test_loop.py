"""The training loop end to end on a tiny dataset: run folder, learning, resume, faults.

Subprocess runs use the real CLI (`python -m dimcollapse train`) with one thread each, so the
interrupted-and-resumed run and the uninterrupted one compute with identical kernels.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from trainhelpers import REPO, cli_args, cli_env, run_cli, tiny_overrides

from dimcollapse.cli import main as cli_main
from dimcollapse.config import load_config
from dimcollapse.models import build_backbone, build_projector
from dimcollapse.optim import warmup_cosine
from dimcollapse.train import load_checkpoint, run_training

STEPS = 8


def test_run_folder_metrics_and_checkpoint(tiny_data, tmp_path):
    over = tiny_overrides(tiny_data, tmp_path / "cache", **{"loop.max_steps": 12,
                                                            "model.projector": "none"})
    result = run_training(tmp_path / "run", overrides=over, quiet=True)
    assert result.status == "complete" and result.step == 12
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint_final.pt", "config.json", "metrics.jsonl", "run.json"]
    records = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert [r["step"] for r in records] == list(range(1, 13))
    for r in records:
        assert {"step", "epoch", "loss", "loss_avg", "probe_loss", "probe_acc", "lr",
                "images_per_s", "time_s"} <= r.keys()
        expected = warmup_cosine(r["step"] - 1, total_steps=12, warmup_steps=2, base_lr=0.05,
                                 final_lr=0.05 * 0.001)
        assert r["lr"] == pytest.approx(expected, rel=1e-12)
    spectra = [r for r in records if "rankme_r" in r]
    assert [r["step"] for r in spectra] == [3, 6, 9, 12]
    assert all(0 <= r["collapsed_dims_r"] <= 512 and r["rankme_r"] > 1 for r in spectra)
    assert all(r["spectrum_samples"] == 16 * 3 for r in spectra)  # window: 3 steps of 16
    # The online probe learns the colour classes (chance: 0.25); that the contrastive step
    # itself learns is tested on a fixed batch in test_step.py.
    assert sum(r["probe_acc"] for r in records[-4:]) / 4 > 0.5
    # The checkpoint follows the documented format and rebuilds the modules strictly.
    ckpt = load_checkpoint(run / "checkpoint_final.pt")
    assert ckpt["step"] == 12 and ckpt["config"]["model"]["projector"] == "none"
    assert load_config(run / "config.json") == result_config(ckpt)
    backbone = build_backbone(ckpt["config"]["model"]["backbone"],
                              stem=ckpt["config"]["model"]["stem"])
    backbone.load_state_dict(ckpt["backbone"])
    build_projector("none", 512).load_state_dict(ckpt["projector"])
    assert ckpt["classifier"]["weight"].shape == (4, 512)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["total_steps"] == 12
    assert info["git_sha"] == ckpt["git_sha"] and "command" in info
    # Rerunning the finished run does nothing (and does not even need the data).
    again = run_training(tmp_path / "run", overrides={**over, "data.data_dir": "/gone"},
                         quiet=True)
    assert again.status == "already-complete" and again.step == 12
    assert len(open(run / "metrics.jsonl").readlines()) == 12


def result_config(ckpt):
    from dimcollapse.config import config_from_dict

    return config_from_dict(ckpt["config"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted CLI run of STEPS steps: (args without --out, its run folder)."""
    from trainhelpers import make_tree

    tmp = tmp_path_factory.mktemp("ref")
    over = tiny_overrides(make_tree(tmp / "data"), tmp / "cache",
                          **{"loop.max_steps": STEPS, "model.projector": "random-subvector",
                             "model.d0": 100})
    args = cli_args(over)
    done = run_cli([*args, "--out", str(tmp / "ref"), "--quiet"])
    assert done.returncode == 0, done.stderr
    return args, tmp / "ref"


def _assert_same_run(a, b):
    ca, cb = (load_checkpoint(p / "checkpoint_final.pt") for p in (a, b))
    for part in ("backbone", "projector", "classifier"):
        assert ca[part].keys() == cb[part].keys()
        for k in ca[part]:
            assert torch.equal(ca[part][k], cb[part][k]), f"{part}.{k} differs"
    for i, state in ca["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], cb["optimizer"]["state"][i]["momentum_buffer"])
    keys = ("step", "loss", "probe_loss", "probe_acc", "lr")
    ma, mb = ([json.loads(line) for line in open(p / "metrics.jsonl")] for p in (a, b))
    assert [r["step"] for r in mb] == list(range(1, STEPS + 1))
    assert [{k: r[k] for k in keys} for r in ma] == [{k: r[k] for k in keys} for r in mb]
    # A spectrum whose window straddles the resume misses the steps before it (documented);
    # windows that lie wholly after it are exact.
    spectral = ("rankme_r", "rankme_z", "collapsed_dims_r", "collapsed_dims_z")
    full = [(ra, rb) for ra, rb in zip(ma, mb, strict=True)
            if "spectrum_samples" in ra and ra["spectrum_samples"] == rb["spectrum_samples"]]
    assert full, "no spectrum window to compare"
    for ra, rb in full:
        assert {k: ra[k] for k in spectral} == {k: rb[k] for k in spectral}


def _start_and_stop(args, out, sig):
    """Start a CLI run, send `sig` once its first checkpoint exists; return (proc, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "dimcollapse", "train", *args, "--out",
                             str(out)], cwd=REPO, env=cli_env(), stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint_last.pt").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    return proc, err


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_exact(reference, tmp_path):
    args, ref = reference
    proc, _ = _start_and_stop(args, tmp_path / "run", signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["step"]
    assert killed_at < STEPS and not (tmp_path / "run" / "checkpoint_final.pt").exists()
    # Rerunning the same command resumes automatically.
    done = run_cli([*args, "--out", str(tmp_path / "run"), "--quiet"])
    assert done.returncode == 0, done.stderr
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert [s["step"] for s in run["starts"]] == [0, killed_at]
    _assert_same_run(ref, tmp_path / "run")


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_resume_is_bit_exact(reference, tmp_path):
    args, ref = reference
    proc, err = _start_and_stop(args, tmp_path / "run", signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM, err
    step = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["step"]
    assert f"stopped by signal at step {step}" in err and "Traceback" not in err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "interrupted"
    done = run_cli([*args, "--out", str(tmp_path / "run"), "--resume", "--quiet"])
    assert done.returncode == 0, done.stderr
    _assert_same_run(ref, tmp_path / "run")


def test_nonfinite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
        tiny_data, tmp_path, capsys):
    over = tiny_overrides(tiny_data, tmp_path / "cache",
                          **{"optim.lr": 1e30, "optim.warmup_steps": 0,
                             "loop.checkpoint_every_steps": 1, "loop.spectrum_every_steps": 0})
    rc = cli_main(["train", *cli_args(over), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and "loss is nan at step 2" in err[0].lower(), err
    assert "checkpoint_last.pt" in err[0]
    assert load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["step"] == 1
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "diverged" and info["step"] == 2
