"""`dimcollapse compare`: the table's values are the runs' files' values; missing files are
computed (equal to `probe`/`spectrum` output) or listed as commands."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from evalfakes import make_labelled_tree, train_tiny  # noqa: E402

from dimcollapse.cli import main  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _fake_run(folder: Path, top1, knn, rankme_r, coll_r, coll_z, n_ev=8):
    """A run folder holding only evaluation files with chosen values."""
    (folder / "spectrum_representation").mkdir(parents=True)
    (folder / "spectrum_embedding").mkdir(parents=True)
    ev = [2.0 ** -k for k in range(n_ev)]
    (folder / "probe.json").write_text(json.dumps({
        "checkpoint": {"path": str(folder / "checkpoint_final.pt"), "step": 600},
        "linear_probe": {"top1": top1, "top5": top1 + 30, "l2": 0.01}, "knn": {"top1": knn}}))
    (folder / "spectrum_representation" / "spectrum.json").write_text(json.dumps({
        "eigenvalues": ev, "rankme": rankme_r, "collapsed_dims": coll_r, "dim": n_ev,
        "threshold": 1e-4}))
    (folder / "spectrum_embedding" / "spectrum.json").write_text(json.dumps({
        "eigenvalues": ev[:4], "rankme": 3.5, "collapsed_dims": coll_z, "dim": 4,
        "threshold": 1e-4}))


def test_table_values_equal_the_inputs(tmp_path, capsys):
    values = {"mlp": (52.25, 48.5, 180.25, 1, 40), "none": (53.75, 50.125, 143.5, 99, 99)}
    for name, v in values.items():
        _fake_run(tmp_path / "runs" / name / "seed0", *v)
    runs = [str(tmp_path / "runs" / n / "seed0") for n in values]
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp"), "--no-compute"]) == 0
    out = capsys.readouterr().out
    assert "mlp/seed0: top-1 52.25%" in out  # default labels: the shortest unique path tail
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]
    with open(tmp_path / "cmp" / "compare.csv") as f:
        table = list(csv.DictReader(f))
    md = (tmp_path / "cmp" / "compare.md").read_text()
    for row, csv_row, (name, (top1, knn, rankme_r, coll_r, coll_z)) in zip(
            rows, table, values.items(), strict=True):
        assert row["label"] == f"{name}/seed0" == csv_row["label"]
        assert (row["top1"], row["knn_top1"], row["rankme_r"]) == (top1, knn, rankme_r)
        assert (row["collapsed_dims_r"], row["collapsed_dims_z"]) == (coll_r, coll_z)
        assert (row["top5"], row["l2"], row["step"], row["dim_z"]) == (top1 + 30, 0.01, 600, 4)
        assert float(csv_row["top1"]) == top1 and int(csv_row["collapsed_dims_r"]) == coll_r
        assert f"| {name}/seed0 | {top1:.2f} |" in md
    assert (tmp_path / "cmp" / "compare_spectra.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["compare", *runs, "--labels", "a,b", "--out", str(tmp_path / "c2"),
                 "--no-compute", "--quiet"]) == 0
    assert [r["label"] for r in json.loads((tmp_path / "c2" / "compare.json").read_text())
            ["rows"]] == ["a", "b"]
    assert main(["compare", *runs, "--labels", "a", "--out", str(tmp_path / "c3")]) == 2
    assert "one per run" in capsys.readouterr().err


def test_missing_results_are_computed_or_listed(tmp_path, capsys):
    data = make_labelled_tree(tmp_path / "data")
    run = train_tiny(tmp_path / "run", data, tmp_path / "cache",
                     **{"model.projector": "directclr", "model.d0": 8})
    _fake_run(tmp_path / "other", 10.0, 9.0, 2.0, 500, 120)
    assert main(["compare", str(run), str(tmp_path / "other"), "--no-compute",
                 "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert f"dimcollapse probe {run}" in err and "--space representation" in err
    assert not (tmp_path / "cmp" / "compare.json").exists()
    # computed: equal to what `probe` and `spectrum` write for the same run
    assert main(["compare", str(run), str(tmp_path / "other"), "--out", str(tmp_path / "cmp"),
                 "--quiet", "--threads", "1"]) == 0
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]
    probe = json.loads((run / "probe.json").read_text())
    spec_r = json.loads((run / "spectrum_representation" / "spectrum.json").read_text())
    spec_z = json.loads((run / "spectrum_embedding" / "spectrum.json").read_text())
    assert rows[0]["top1"] == probe["linear_probe"]["top1"]
    assert rows[0]["collapsed_dims_r"] == spec_r["collapsed_dims"]
    assert rows[0]["collapsed_dims_z"] == spec_z["collapsed_dims"] and rows[0]["dim_z"] == 8
    assert main(["probe", str(run), "--out", str(tmp_path / "p"), "--quiet"]) == 0
    again = json.loads((tmp_path / "p" / "probe.json").read_text())
    assert again["linear_probe"]["top1"] == probe["linear_probe"]["top1"]
    assert rows[1]["collapsed_dims_r"] == 500


def test_results_of_an_older_checkpoint_are_recomputed(tmp_path, capsys):
    data = make_labelled_tree(tmp_path / "data")
    run = train_tiny(tmp_path / "run", data, tmp_path / "cache",
                     **{"model.projector": "none"})
    stale = json.loads(json.dumps({"checkpoint": {"path": str(run / "checkpoint_last.pt"),
                                                  "step": 2},
                                   "linear_probe": {"top1": 1.0}, "knn": None}))
    (run / "probe.json").write_text(json.dumps(stale))
    assert main(["compare", str(run), "--no-compute", "--out", str(tmp_path / "c")]) == 2
    assert "dimcollapse probe" in capsys.readouterr().err
    assert main(["compare", str(run), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    row = json.loads((tmp_path / "c" / "compare.json").read_text())["rows"][0]
    assert row["top1"] != 1.0 and row["step"] == 4
