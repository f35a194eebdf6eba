"""`dimcollapse explain gradient-rank` on tiny trained runs: files, labels, identities, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from trainhelpers import make_tree, tiny_overrides  # noqa: E402

from dimcollapse.cli import main  # noqa: E402
from dimcollapse.devices import resolve_precision  # noqa: E402
from dimcollapse.eval.target import resolve_target  # noqa: E402
from dimcollapse.explain.run_gradients import encoder_of  # noqa: E402
from dimcollapse.train import run_training  # noqa: E402
from dimcollapse.train.parts import assemble  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("explain")
    data = make_tree(base / "data")
    out = {}
    for arm, extra in (("directclr", {"model.d0": 6}), ("mlp", {})):
        over = tiny_overrides(data, base / "cache", **{"model.projector": arm, **extra,
                                                       "loop.max_steps": 2,
                                                       "loop.spectrum_every_steps": 0})
        run_training(base / arm, overrides=over, quiet=True)
        out[arm] = base / arm
    return out


def test_gradient_rank_cli_writes_json_and_figure(runs, tmp_path, capsys):
    out = tmp_path / "fig10"
    rc = main(["explain", "gradient-rank", str(runs["directclr"]), str(runs["mlp"]),
               "--out", str(out), "--batch-size", "8", "--label", "DirectCLR",
               "--label", "2-layer"])
    assert rc == 0
    res = json.loads((out / "gradient_rank.json").read_text())
    assert (out / "gradient_rank.png").stat().st_size > 0
    assert [a["label"] for a in res["arms"]] == ["DirectCLR", "2-layer"]
    dclr, mlp = res["arms"]
    assert dclr["d0"] == 6 and dclr["step"] == 2 and dclr["rows"] == 16
    assert dclr["grad_r"]["rank"] == 6
    assert len(dclr["grad_r"]["singular_values"]) == 16
    assert mlp["grad_r"]["rank"] == 16 - 2  # one row per view removed by the BatchNorms
    assert res["batch"] == {**res["batch"], "images": 8, "rows": 16, "seed": 0}
    assert "float64" in res["dtype"]
    assert "rank dL/dr 6 of 16" in capsys.readouterr().err


def test_gradient_rank_same_seed_same_numbers(runs, tmp_path):
    args = ["explain", "gradient-rank", str(runs["directclr"]), "--batch-size", "8", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / x / "gradient_rank.json").read_text())["arms"]
            for x in ("a", "b"))
    assert a[0]["grad_h_pooled"] == b[0]["grad_h_pooled"]


def test_gradient_rank_errors_are_one_line(runs, tmp_path, capsys):
    rc = main(["explain", "gradient-rank", str(runs["mlp"]), "--out", str(tmp_path),
               "--label", "a", "--label", "b", "--quiet"])
    assert rc == 2 and "2 --label values for 1 runs" in capsys.readouterr().err
    rc = main(["explain", "gradient-rank", str(runs["mlp"]), "--out", str(tmp_path),
               "--batch-size", "1000", "--quiet"])
    assert rc == 2 and "exceeds the 48 training images" in capsys.readouterr().err


def test_init_is_the_encoder_training_started_from(runs):
    target = resolve_target(runs["directclr"])
    cfg, init = encoder_of(target, at_init=True)
    torch.manual_seed(1234)  # assemble seeds torch itself: this must not matter
    parts = assemble(cfg, num_classes=4, device=torch.device("cpu"),
                     precision=resolve_precision("fp32", torch.device("cpu")), world_size=1)
    ref, got = parts.encoder.state_dict(), init.state_dict()
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    _, trained = encoder_of(target)
    assert not torch.equal(trained.backbone.conv1.weight, init.backbone.conv1.weight)


def test_init_panels_show_the_zero_init_residual_identity(runs, tmp_path):
    out = tmp_path / "init"
    rc = main(["explain", "gradient-rank", str(runs["directclr"]), "--init", "--out", str(out),
               "--batch-size", "8", "--quiet"])
    assert rc == 0
    start, end = json.loads((out / "gradient_rank.json").read_text())["arms"]
    assert (start["at_init"], start["step"], start["checkpoint"]) == (True, 0, None)
    assert start["label"] == "directclr (step 0, init)" and end["label"] == "directclr (step 2)"
    assert start["grad_r"]["rank"] == end["grad_r"]["rank"] == 6
    # zero_init_residual: the last block's residual branch passes no gradient at step 0
    assert start["grad_h_pooled"]["rank"] == 6
