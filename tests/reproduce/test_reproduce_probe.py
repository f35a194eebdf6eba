"""`reproduce` with the spectrum hook's probe set on: collapse_over_training.png from the runs'
metrics.jsonl, and the probe setting is not part of an arm's plan (it changes no result)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from evalfakes import make_labelled_tree  # noqa: E402

from dimcollapse.report.reproduce_figures import FIG_OVER_TRAINING, over_training  # noqa: E402
from dimcollapse.reproduce import Budget, parse_set, run_reproduction  # noqa: E402

TINY = ["model.hidden_dim=64", "model.out_dim=32", "loop.precision=\"fp32\"",
        "loop.checkpoint_every_steps=2", "loop.log_every_steps=1"]

pytestmark = pytest.mark.usefixtures("one_thread")


def _budget(root, cache, *extra):
    return Budget("cpu", str(root), max_steps=4, image_size=16, batch_size=16, threads=1,
                  cache_dir=str(cache), extra=parse_set([*TINY, *extra]))


def test_reproduce_draws_collapse_over_training(tmp_path):
    root, cache = make_labelled_tree(tmp_path / "data"), tmp_path / "cache"
    out = tmp_path / "rep"
    budget = _budget(root, cache, "loop.spectrum_every_steps=2", "loop.spectrum_probe_images=8")
    res = run_reproduction("d0-sweep", budget, seeds=[0], out_dir=out, d0_grid=[8],
                           log=lambda m: None)
    assert res["figures"]["collapse_over_training"] == FIG_OVER_TRAINING
    assert (out / FIG_OVER_TRAINING).read_bytes()[:4] == b"\x89PNG"
    assert "collapse_over_training.png" in (out / "results.md").read_text()
    run = out / res["arms"][0]["per_seed"][0]["run_dir"]
    probed = [json.loads(line) for line in open(run / "metrics.jsonl")]
    probed = [r for r in probed if "probe_rankme_r" in r]
    curve = over_training(res["arms"], out)[res["arms"][0]["label"]]["probe_rankme_r"]
    assert curve["steps"] == [r["step"] for r in probed] == [0, 2, 4]
    assert curve["mean"] == [r["probe_rankme_r"] for r in probed]
    # the same arm with the probe set off is the same plan: the result is reused
    off = _budget(root, cache, "loop.spectrum_every_steps=2")
    again = run_reproduction("d0-sweep", off, seeds=[0], out_dir=out, d0_grid=[8],
                             log=lambda m: None)
    assert again["reused_arms"] == 1
