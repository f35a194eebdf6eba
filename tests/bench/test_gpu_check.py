"""bench/gpu_check.sh in its dry mode (the CPU, toy sizes), as CI runs it, and its pieces.

The dry run must build its venv from this repository, skip (and count) every CUDA test, time
the cifar preset's step, train and evaluate the four table1 arms, and leave a report whose
numbers are consistent with each other; the device returns at most 8 files, none in folders.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import gpu_check  # noqa: E402
import gpu_data  # noqa: E402
import gpu_report  # noqa: E402

N_CUDA_TESTS = 13  # tests/cuda, parametrisations included


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_check")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(REPO / "bench/gpu_check.sh"), "--dry", "--out",
                           str(tmp / "out"), "--work", str(tmp / "work"), "--python",
                           sys.executable, "--budget-s", "400"],
                          capture_output=True, text=True, timeout=600, env=env)
    return proc, tmp / "out"


@pytest.mark.slow
def test_dry_run_report(dry):
    proc, out = dry
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "gpu_check.json").read_text())
    assert doc["format"] == "dimcollapse-gpu-check" and doc["mode"] == "dry"
    assert doc["status"] == "ok" and 0 < doc["elapsed_s"] < doc["budget_s"]
    ph = doc["phases"]
    assert {k: ph[k]["status"] for k in gpu_report.PHASES} == dict.fromkeys(gpu_report.PHASES,
                                                                            "ok")
    setup = ph["setup"]
    assert setup["method"] in ("pip-editable", "pth-src")
    assert setup["dimcollapse"] == str(REPO / "src" / "dimcollapse")
    assert setup["requirements"]["torch"]["ok"] is True

    c = ph["cuda_tests"]
    assert c["collected"] == N_CUDA_TESTS == c["skipped"] == len(c["tests"])
    assert c["passed"] == c["failed"] == c["error"] == 0
    assert all(t["outcome"] == "skipped" and t["message"] for t in c["tests"])

    t = ph["timing"]
    w = t["workload"]
    assert (w["backbone"], w["stem"], w["precision"]) == ("resnet18", "cifar", "fp32")
    assert w["resident_images_on"] == "cpu" and t["device"] == "cpu"
    assert t["timed_steps"] == 2 and t["finite"]
    assert t["images_per_s"] > 0 and t["views_images_per_s"] > 0
    assert t["images_per_s"] == pytest.approx(w["batch_size"] / t["s_per_step"])
    assert t["epoch_s"] == pytest.approx(t["epoch_steps"] * t["s_per_step"])
    assert t["epoch_steps"] == 50_000 // w["batch_size"]

    r = ph["reproduce"]
    assert r["complete_arms"] == 4 and r["results_json"]
    assert {a["key"] for a in r["arms"]} == {"mlp", "linear", "none", "directclr-d0_90"}
    for a in r["arms"]:
        assert 0 <= a["top1"] <= 100 and 0 <= a["knn_top1"] <= 100
        assert a["rankme_r"] > 0 and a["train_steps"] == 2
    assert doc["data"]["source"] == "synthetic" and "not CIFAR-10" in doc["data"]["note"]
    results = json.loads((out / "reproduce_results.json").read_text())
    assert [a["top1"]["mean"] for a in results["arms"]] == [
        {a["key"]: a["top1"] for a in r["arms"]}[k["key"]] for k in results["arms"]]

    md = (out / "gpu_check.md").read_text()
    assert md.startswith("# GPU check (dry mode)")
    assert "| cuda_tests | ok |" in md and f"{N_CUDA_TESTS} skipped" in md
    assert f"| {t['images_per_s']:.0f} | {t['s_per_step']:.4f} |" in md
    assert "Dry mode" in md and "synthetic" in md
    # What the device tool returns: at most 8 files, no folders (and nothing else under $OUT).
    files = sorted(p.name for p in out.iterdir())
    assert all((out / f).is_file() for f in files) and len(files) <= 8
    assert "gpu_check.log" in files and "reproduce_results.md" in files
    assert proc.stdout.startswith("# GPU check (dry mode)")


def test_cuda_test_count_matches_the_folder():
    """N_CUDA_TESTS above is what pytest collects in tests/cuda (so the dry test's count
    check follows the folder)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "cuda",
                           "tests/cuda", "-p", "no:cacheprovider"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    ids = [x for x in proc.stdout.splitlines() if "::" in x]
    assert len(ids) == N_CUDA_TESTS, proc.stdout[-2000:]


def test_plan_epochs_fills_the_time_and_no_more():
    kw = dict(arms=4, eval_s_per_arm=30.0, startup_s=30.0, max_epochs=1000, margin=0.85)
    for remaining, s_step, spe in ((300.0, 0.03, 19), (250.0, 0.05, 97), (600.0, 0.011, 19)):
        e = gpu_check.plan_epochs(remaining, s_step, spe, **kw)

        def cost(epochs, s_step=s_step, spe=spe):
            return kw["startup_s"] + kw["arms"] * (epochs * spe * s_step + kw["eval_s_per_arm"])

        assert e >= 1 and cost(e) <= 0.85 * remaining < cost(e + 1)
    assert gpu_check.plan_epochs(150.0, 0.03, 19, **kw) is None  # eval alone does not fit
    assert gpu_check.plan_epochs(1e6, 0.03, 19, **{**kw, "max_epochs": 7}) == 7


def test_a_phase_over_its_limit_is_killed_with_its_children(tmp_path):
    t0 = time.perf_counter()
    rc, secs = gpu_check.run_logged(["bash", "-c", "sleep 60 & sleep 60"], timeout_s=1.0,
                                    log=tmp_path / "log")
    assert rc is None and secs < 10 and time.perf_counter() - t0 < 10
    assert "[exit None" in (tmp_path / "log").read_text()
    rc, _ = gpu_check.run_logged(["bash", "-c", "exit 3"], timeout_s=10, log=tmp_path / "log")
    assert rc == 3


def test_read_junit_counts_each_outcome(tmp_path):
    (tmp_path / "j.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.cuda.test_a" name="t1" time="1.5"/>'
        '<testcase classname="tests.cuda.test_a" name="t2" time="0.1">'
        '<failure message="assert 1 == 2">x</failure></testcase>'
        '<testcase classname="tests.cuda.test_b" name="t3" time="0">'
        '<skipped type="pytest.skip" message="no CUDA device"/></testcase>'
        '<testcase classname="tests.cuda.test_b" name="t4" time="0">'
        '<error message="fixture failed"/></testcase>'
        '</testsuite></testsuites>')
    tests = gpu_report.read_junit(tmp_path / "j.xml")
    assert [(t["name"], t["outcome"]) for t in tests] == [
        ("test_a::t1", "passed"), ("test_a::t2", "failed"), ("test_b::t3", "skipped"),
        ("test_b::t4", "error")]
    assert tests[0]["seconds"] == 1.5 and tests[2]["message"] == "no CUDA device"


def test_gpu_data_round_trips_through_the_cifar_loader(tmp_path):
    from dimcollapse.data import build_dataset

    train = gpu_data.synthetic_split(23, 0)
    test = gpu_data.synthetic_split(7, 1)
    gpu_data.write_cifar(tmp_path, train, test, gpu_data.CLASSES, {"source": "synthetic"})
    for split, (x, y) in (("train", train), ("test", test)):
        ds = build_dataset("cifar10", tmp_path, split)
        assert np.array_equal(ds.images.numpy(), x) and np.array_equal(ds.targets.numpy(), y)
        assert ds.classes == gpu_data.CLASSES
    info = gpu_data.read_info(tmp_path)
    assert info == {"source": "synthetic", "train_images": 23, "test_images": 7}
    # The synthetic classes differ in mean colour (something for the probe to find).
    means = torch.stack([torch.from_numpy(train[0][train[1] == c]).double().mean((0, 2, 3))
                         for c in range(3)])
    assert float(torch.cdist(means, means).max()) > 20


def test_gpu_mode_plans_the_reproduction_from_the_timing(tmp_path, monkeypatch):
    """The GPU-only branch of the reproduce phase, with the subprocess replaced: the command
    asks for the planned epochs (which fit the time left) on the given CIFAR folder."""
    data = tmp_path / "cifar"
    gpu_data.write_cifar(data, gpu_data.synthetic_split(1024, 0), gpu_data.synthetic_split(8, 1),
                         gpu_data.CLASSES, {"source": "cifar10-subset", "seed": 0})
    (tmp_path / "setup.json").write_text("{}")
    args = argparse.Namespace(
        out=str(tmp_path / "out"), work=str(tmp_path / "work"), start=time.time(),
        deadline=time.time() + 400, setup_json=str(tmp_path / "setup.json"),
        data_dir=str(data), dry=False)
    (tmp_path / "out").mkdir()
    (tmp_path / "work").mkdir()
    check = gpu_check.Check(args)
    check.report.phase("timing", status="ok", s_per_step=1.0)
    calls = []
    monkeypatch.setattr(gpu_check, "run_logged",
                        lambda cmd, **kw: calls.append((cmd, kw)) or (0, 1.0))
    rec = check.reproduce()
    (cmd, kw), = calls
    plan = rec["plan"]
    assert plan["steps_per_epoch"] == 1024 // 512 and plan["s_per_step_source"] == "timing phase"
    e = plan["epochs"]
    assert cmd[cmd.index("--epochs") + 1] == str(e)
    assert cmd[cmd.index("--data-dir") + 1] == str(data)
    # ~385 s left: (0.85 x 385 - 30) / 4 - 30 = 44 s per arm, 2 s per epoch: 22 epochs.
    assert 15 <= e < 200 and e == gpu_check.plan_epochs(
        kw["timeout_s"], 1.0, 2, arms=4, eval_s_per_arm=30.0, startup_s=30.0, max_epochs=200)
    assert f"optim.warmup_epochs={plan['warmup_epochs']}" in cmd
    assert "--dry" not in cmd and "--max-steps" not in cmd
    assert check.report.doc["data"]["source"] == "cifar10-subset"
    assert rec["status"] == "failed" and rec["complete_arms"] == 0  # nothing ran
