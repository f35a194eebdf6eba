"""collapse_over_training.png's numbers: per arm and step, mean / min / max over seeds of the
probe_* keys of each run's metrics.jsonl; no figure (as before) when no run has them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dimcollapse.report.reproduce_figures import (
    FIG_OVER_TRAINING,
    collapse_over_training,
    draw_all,
    not_over_training,
    over_training,
)


def _run(root: Path, rel: str, records: list[dict]) -> dict:
    (root / rel).mkdir(parents=True)
    (root / rel / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return {"run_dir": rel, "seed": int(rel[-1])}


def _rec(step: int, rr: float, cd: int, rz: float) -> dict:
    return {"step": step, "loss": 1.0, "probe_rankme_r": rr, "probe_collapsed_dims_r": cd,
            "probe_rankme_z": rz, "probe_images": 8}


def test_mean_and_range_over_seeds_on_common_steps(tmp_path):
    rows = [{"label": "no projector", "key": "none", "projector": "none", "per_seed": [
        _run(tmp_path, "runs/none/seed0", [_rec(0, 10, 0, 10), {"step": 1, "loss": 2.0},
                                           _rec(3, 20, 2, 5)]),
        _run(tmp_path, "runs/none/seed1", [_rec(0, 12, 0, 12), _rec(3, 30, 4, 7),
                                           _rec(6, 40, 1, 1)])]},
        {"label": "old arm", "key": "old", "projector": "mlp", "per_seed": [
            _run(tmp_path, "runs/old/seed0", [{"step": 3, "loss": 1.0, "rankme_r": 5.0}])]}]
    got = over_training(rows, tmp_path)
    assert list(got) == ["no projector"]  # an arm without probe keys draws nothing
    assert not_over_training(rows, got) == ["old arm"]  # ... and is named under the figure
    r = got["no projector"]["probe_rankme_r"]
    assert r["steps"] == [0, 3]  # step 6: one seed only
    assert r["mean"] == [11.0, 25.0] and r["min"] == [10.0, 20.0] and r["max"] == [12.0, 30.0]
    assert got["no projector"]["probe_collapsed_dims_r"]["mean"] == [0.0, 3.0]
    assert got["no projector"]["probe_rankme_z"]["seeds"] == 2
    path = collapse_over_training(rows, tmp_path)
    assert path == tmp_path / FIG_OVER_TRAINING and path.stat().st_size > 0
    assert draw_all(rows, tmp_path)["collapse_over_training"] == FIG_OVER_TRAINING


@pytest.mark.parametrize("records", [[{"step": 3, "loss": 1.0, "rankme_r": 5.0}], []])
def test_no_probe_keys_no_figure(tmp_path, records):
    rows = [{"label": "a", "key": "a", "projector": "mlp",
             "per_seed": [_run(tmp_path, "runs/a/seed0", records)]}]
    assert collapse_over_training(rows, tmp_path) is None
    assert "collapse_over_training" not in draw_all(rows, tmp_path)
    assert not (tmp_path / FIG_OVER_TRAINING).exists()
