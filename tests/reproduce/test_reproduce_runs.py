"""`run_reproduction` end to end on a tiny fake dataset: 2 arms x 1 seed, results consistent
with the per-arm files, a rerun reuses completed arms, and a crash mid-arm resumes to the
same result as an uninterrupted run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from evalfakes import make_labelled_tree  # noqa: E402

from dimcollapse.errors import UserError  # noqa: E402
from dimcollapse.reproduce import ARM_FILE, Budget, parse_set, run_reproduction  # noqa: E402

TINY = ["model.hidden_dim=64", "model.out_dim=32", "loop.precision=\"fp32\"",
        "loop.checkpoint_every_steps=2", "loop.log_every_steps=1", "loop.spectrum_every_steps=0"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    return make_labelled_tree(base / "data"), base / "cache"


def _budget(data, steps=4, **kw):
    root, cache = data
    return Budget("cpu", str(root), max_steps=steps, image_size=16, batch_size=16, threads=1,
                  cache_dir=str(cache), extra=parse_set(TINY), **kw)


def _run(out, data, **kw):
    steps = kw.pop("steps", 4)
    return run_reproduction("d0-sweep", _budget(data, steps=steps), seeds=[0], out_dir=out,
                            d0_grid=[8, 16], log=lambda m: None, **kw)


def test_results_equal_the_per_arm_files_and_rerun_reuses(data, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    res = _run(out, data)
    assert res["tables"] == {"d0-sweep": ["directclr-d0_8", "directclr-d0_16"]}
    assert res["total_jobs"] == 2 and res["reused_arms"] == 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["arms"] == json.loads(json.dumps(res["arms"]))
    for row in saved["arms"]:
        run = out / "runs" / row["key"] / "seed0"
        probe = json.loads((run / "probe.json").read_text())
        sub = json.loads((run / f"probe_subvector{row['d0']}.json").read_text())
        spec_r = json.loads((run / "spectrum_representation" / "spectrum.json").read_text())
        spec_z = json.loads((run / "spectrum_embedding" / "spectrum.json").read_text())
        record = json.loads((run / ARM_FILE).read_text())
        assert row["top1"]["values"] == [probe["linear_probe"]["top1"]]
        assert row["top5"]["mean"] == probe["linear_probe"]["top5"]
        assert row["knn_top1"]["mean"] == probe["knn"]["top1"]
        assert row["subvector_top1"]["mean"] == sub["linear_probe"]["top1"] and sub["dim"] == \
            row["d0"]
        assert row["rankme_r"]["mean"] == spec_r["rankme"]
        assert row["collapsed_dims_r"]["mean"] == spec_r["collapsed_dims"]
        assert row["collapsed_dims_z"]["mean"] == spec_z["collapsed_dims"]
        assert spec_z["dim"] == row["d0"] and spec_r["dim"] == 512
        assert probe["linear_probe"]["l2_selection"] is not None  # select_l2 by default
        assert record["train"]["steps"] == 4 and record["train"]["starts"] == [0]
        assert record["commands"]["train"].startswith("dimcollapse train --preset cpu")
        assert record["git_sha"] == saved["metadata"]["git_sha"]
        assert record["wall_s"]["total"] > 0
        assert not (run / "features").exists()  # removed after evaluation by default
    assert set(saved["figures"]) == {"representation_spectra", "top1_vs_d0"}
    for name in saved["figures"].values():
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    md = (out / "results.md").read_text()
    assert "DirectCLR (d0 = 8)" in md and "probe on r[:, :16] only" in md
    assert (out / "results.csv").read_text().count("\n") == 3
    # rerun: nothing is trained or evaluated again, and the files are untouched
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed0/*") if p.is_file()}

    def no_training(*a, **k):
        raise AssertionError("a completed arm was trained again")

    monkeypatch.setattr("dimcollapse.train.train", no_training)
    monkeypatch.setattr("dimcollapse.eval.evaluate.Evaluator.probe", no_training)
    again = _run(out, data)
    assert again["reused_arms"] == 2
    assert again["arms"] == res["arms"] and again["findings"] == res["findings"]
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed0/*") if p.is_file()}
    # a different budget in the same folder is refused rather than mixed
    with pytest.raises(UserError, match="different budget"):
        _run(out, data, steps=5)


@pytest.mark.slow
def test_a_crash_mid_arm_resumes_from_its_checkpoint(data, tmp_path, monkeypatch):
    import dimcollapse.train.loop as loop

    real = loop.apply_update
    calls = []

    def crashing(*a, **k):
        calls.append(1)
        if len(calls) == 6 + 3:  # arm 1 takes 6 steps; arm 2 dies in its 3rd step
            raise RuntimeError("simulated crash")
        return real(*a, **k)

    monkeypatch.setattr(loop, "apply_update", crashing)
    out = tmp_path / "rep"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(out, data, steps=6)
    first = out / "runs" / "directclr-d0_8" / "seed0"
    second = out / "runs" / "directclr-d0_16" / "seed0"
    assert (first / ARM_FILE).is_file() and not (second / ARM_FILE).exists()
    assert (second / "checkpoint_last.pt").is_file()  # step 2 survived the crash
    monkeypatch.setattr(loop, "apply_update", real)
    res = _run(out, data, steps=6)
    assert res["reused_arms"] == 1
    record = json.loads((second / ARM_FILE).read_text())
    assert record["train"]["starts"] == [0, 2]
    # the same as a run that was never interrupted, bit for bit
    ref = _run(tmp_path / "ref", data, steps=6)
    ref_dir = tmp_path / "ref" / "runs" / "directclr-d0_16" / "seed0"
    a = torch.load(second / "checkpoint_final.pt", weights_only=True)["backbone"]
    b = torch.load(ref_dir / "checkpoint_final.pt", weights_only=True)["backbone"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    def numbers(arms):  # everything but the wall times
        return [{**a, "per_seed": [{k: v for k, v in s.items() if k != "wall_s"}
                                   for s in a["per_seed"]]} for a in arms]

    assert numbers(res["arms"]) == numbers(ref["arms"])
