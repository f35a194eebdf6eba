"""`run_collapse_factors` end to end on a tiny fake dataset (2 steps, a reduced grid): the
baseline trained once for both arms, each setting's config differing from it in its factor
only, results equal to the per-arm files, a rerun reusing everything, a new value training
only its own setting, and a changed budget refused."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from evalfakes import make_labelled_tree  # noqa: E402

from dimcollapse.cli import main  # noqa: E402
from dimcollapse.errors import UserError  # noqa: E402
from dimcollapse.reproduce import Budget, parse_set  # noqa: E402
from dimcollapse.reproduce.factors_pipeline import PRECISION_FILE, run_collapse_factors  # noqa
from dimcollapse.reproduce.runner import run_job  # noqa: E402

TINY = ["model.hidden_dim=64", "model.out_dim=32", "loop.precision=\"fp32\"",
        "loop.checkpoint_every_steps=2", "loop.log_every_steps=1", "loop.spectrum_every_steps=0"]
GRID = {"jitter": [0.5, 1.0], "weight-decay": [1e-6, 1e-4]}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("factors")
    return make_labelled_tree(base / "data"), base / "cache"


def _budget(data, steps=2):
    root, cache = data
    return Budget("cpu", str(root), max_steps=steps, image_size=16, batch_size=16, threads=1,
                  cache_dir=str(cache), extra=parse_set(TINY))


class Counting:
    """runner.run_job, recording which jobs it trained (not reused)."""

    def __init__(self):
        self.fresh = []

    def __call__(self, job, budget, **kw):
        record, reused = run_job(job, budget, **kw)
        if not reused:
            self.fresh.append(job.rel_dir)
        return record, reused


def _run(out, data, grid=GRID, steps=2, **kw):
    return run_collapse_factors(_budget(data, steps), seeds=[0], out_dir=out, grid=grid,
                                log=lambda m: None, **kw)


def _slow_count(eigs, max_rank, t):
    ev = sorted(eigs, reverse=True)[:max_rank]
    return sum(1 for v in ev if v < t * max(ev))


def test_tiny_run_bookkeeping_rerun_and_new_setting(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cf"
    trained = Counting()
    res = _run(out, data, train_job=trained)
    expected = ["runs/baseline/none/seed0", "runs/baseline/mlp/seed0",
                "runs/jitter-0.5/none/seed0", "runs/jitter-0.5/mlp/seed0",
                "runs/weight-decay-0.0001/none/seed0", "runs/weight-decay-0.0001/mlp/seed0"]
    assert trained.fresh == expected  # the baseline once, shared by both factors
    assert [s["key"] for s in res["settings"]] == ["baseline", "jitter-0.5",
                                                   "weight-decay-0.0001"]
    # each setting's config differs from the baseline's in its factor only
    base = json.loads((out / "runs/baseline/none/seed0/config.json").read_text())
    jit = json.loads((out / "runs/jitter-0.5/none/seed0/config.json").read_text())
    wd = json.loads((out / "runs/weight-decay-0.0001/none/seed0/config.json").read_text())
    assert jit["views"]["color_jitter_strength"] == 0.5
    assert {**jit, "views": base["views"]} == base
    assert wd["optim"]["weight_decay"] == 1e-4
    assert {**wd, "optim": base["optim"]} == base
    # the recorded train command of a setting resolves to its config.json
    record = json.loads((out / "runs/jitter-0.5/none/seed0/reproduce_arm.json").read_text())
    cmd = shlex.split(record["commands"]["train"])
    assert "--jitter-strength" in cmd
    monkeypatch.chdir(out)
    assert main(cmd[1:] + ["--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == jit
    # every count equals the run's own spectrum.json, counted slowly here
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["rows"]) == 6
    for row in saved["rows"]:
        run = out / row["per_seed"][0]["run_dir"]
        for space, sub in (("r", "spectrum_representation"), ("z", "spectrum_embedding")):
            spec = json.loads((run / sub / "spectrum.json").read_text())
            for t in (1e-3, 1e-4, 1e-5):
                assert row[f"below_{space}"][f"{t:.0e}"]["mean"] == _slow_count(
                    spec["eigenvalues"], spec["max_rank"], t)
        probe = json.loads((run / "probe.json").read_text())
        assert row["top1"]["mean"] == probe["linear_probe"]["top1"]
    assert saved["factors"]["jitter"][1] == {"value": 1.0, "label": "1 (preset)",
                                             "setting": "baseline"}
    # the precision check: both extractions of the baseline's no-projector arm
    pc = json.loads((out / PRECISION_FILE).read_text())
    assert pc["run_dir"] == "runs/baseline/none/seed0" and pc["n"] == 24
    assert saved["precision_check"]["noise_floor"] == pc["noise_floor"] >= 0
    md = (out / "results.md").read_text()
    for line in saved["findings"]["lines"]:
        assert line in md
    assert "## jitter" in md and "## weight-decay" in md and "Noise floor" in md
    for name in saved["figures"].values():
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert set(saved["figures"]) == {"jitter", "weight-decay"}
    # rerun: nothing trained, precision check reused (file untouched)
    stamp = (out / PRECISION_FILE).stat().st_mtime_ns
    again = Counting()
    res2 = _run(out, data, train_job=again)
    assert again.fresh == [] and res2["reused_arms"] == 6
    assert (out / PRECISION_FILE).stat().st_mtime_ns == stamp
    assert res2["rows"] == json.loads(json.dumps(res["rows"]))
    # a new value trains its own setting only
    more = Counting()
    res3 = _run(out, data, grid={**GRID, "jitter": [0.5, 1.0, 1.5]}, train_job=more)
    assert more.fresh == ["runs/jitter-1.5/none/seed0", "runs/jitter-1.5/mlp/seed0"]
    assert res3["reused_arms"] == 6 and len(res3["rows"]) == 8
    # a different budget in the same folder is refused, naming the field
    with pytest.raises(UserError, match="loop.max_steps"):
        _run(out, data, steps=3)


def test_interrupted_setting_resumes(data, tmp_path, monkeypatch):
    """A target stopped between arms: the complete arms are reused, only the rest train."""
    out = tmp_path / "cf"
    calls = []

    def stop_at_third(job, budget, **kw):
        calls.append(job.rel_dir)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return run_job(job, budget, **kw)

    with pytest.raises(KeyboardInterrupt):
        _run(out, data, grid={"jitter": [0.5]}, train_job=stop_at_third,
             precision_check=False)
    trained = Counting()
    res = _run(out, data, grid={"jitter": [0.5]}, train_job=trained, precision_check=False)
    assert trained.fresh == ["runs/jitter-0.5/none/seed0", "runs/jitter-0.5/mlp/seed0"]
    assert res["precision_check"] is None and not (out / PRECISION_FILE).exists()
    assert np.isfinite(res["rows"][0]["rankme_r"]["mean"])
