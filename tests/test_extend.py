"""Extending dimcollapse is one call: a projector arm registered here, in the test file only,
trains through `dimcollapse train` and through a tiny `reproduce`, with no other file edited.

The arm: z = r P with P a fixed Gaussian (D, d0) matrix drawn from the run's seed (a random
linear map to d0 coordinates, a cousin of the paper's fixed low-rank projector)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent / "eval"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "train"))
from evalfakes import make_labelled_tree  # noqa: E402
from trainhelpers import cli_args, make_tree, tiny_overrides  # noqa: E402

from dimcollapse import catalogue  # noqa: E402
from dimcollapse.cli import build_parser, main  # noqa: E402
from dimcollapse.models import (  # noqa: E402
    build_projector,
    projector_d0,
    register_projector,
    unregister_projector,
)
from dimcollapse.reproduce import Budget, parse_set, run_reproduction  # noqa: E402
from dimcollapse.reproduce.arms import register_table, unregister_table  # noqa: E402

NAME = "fixed-map"
pytestmark = pytest.mark.usefixtures("one_thread")


class FixedMap(nn.Module):
    """z = r P, P fixed (not trained). Shape: (B, D) -> (B, d0)."""

    def __init__(self, in_dim: int, d0: int):
        super().__init__()
        self.register_buffer("matrix", torch.randn(in_dim, d0) / d0 ** 0.5)
        self.out_dim = d0

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return r @ self.matrix

    def set_step(self, step: int) -> None:
        """Fixed: nothing is redrawn."""


@pytest.fixture
def arm():
    register_projector(NAME, lambda D, o: FixedMap(D, projector_d0(NAME, D, o)), uses_d0=True)
    register_table("extend", "a fixed random map to d0, beside no projector", [NAME, "none"])
    yield
    unregister_table("extend")
    unregister_projector(NAME)


def test_the_arm_is_in_the_vocabulary_while_registered(arm):
    assert NAME in catalogue.PROJECTORS and NAME in catalogue.USES_D0
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    helps = {a.option_strings[0]: a.help for a in train._actions if a.option_strings}
    assert NAME in helps["--projector"] and NAME in helps["--d0"]


def test_unregistered_arm_is_gone():
    assert NAME not in catalogue.PROJECTORS and NAME not in catalogue.USES_D0


def test_train_entry_point_trains_the_new_arm(arm, tmp_path, capsys):
    over = tiny_overrides(make_tree(tmp_path / "data"), tmp_path / "cache",
                          **{"model.projector": NAME, "model.d0": 8, "loop.max_steps": 3,
                             "loop.spectrum_every_steps": 0})
    run = tmp_path / "run"
    assert main(["train", *cli_args(over), "--out", str(run), "--quiet"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["projector"] == NAME and cfg["model"]["d0"] == 8
    ckpt = torch.load(run / "checkpoint_final.pt", weights_only=True)
    assert ckpt["step"] == 3
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    # the fixed map is the one the run's seed draws, and it was saved untouched by training
    expected = build_projector(NAME, 512, d0=8, seed=cfg["seed"]).matrix
    assert torch.equal(ckpt["projector"]["matrix"], expected)
    from dimcollapse import build
    from dimcollapse.config import config_from_dict, resolve

    enc = build.build_encoder(resolve(config_from_dict(cfg)))
    # and the saved encoder computes z = r P
    enc.backbone.load_state_dict(ckpt["backbone"])
    enc.projector.load_state_dict(ckpt["projector"])
    r, z = enc.eval()(torch.randn(2, 3, 16, 16))
    torch.testing.assert_close(z, r @ expected)
    # its d0 goes through the one check, with the one message
    capsys.readouterr()
    no_d0 = {k: v for k, v in over.items() if k != "model.d0"}
    assert main(["train", *cli_args(no_d0), "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert f"projector '{NAME}' needs d0" in capsys.readouterr().err
    assert main(["train", *cli_args({**over, "model.d0": 600}), "--out",
                 str(tmp_path / "bad2"), "--quiet"]) == 2
    assert "--d0 600 exceeds the representation size 512" in capsys.readouterr().err


@pytest.mark.slow
def test_a_tiny_reproduction_runs_the_new_arm(arm, tmp_path, capsys, monkeypatch):
    data = make_labelled_tree(tmp_path / "data")
    extra = parse_set(["model.hidden_dim=64", "model.out_dim=32", 'loop.precision="fp32"',
                       "loop.checkpoint_every_steps=2", "loop.spectrum_every_steps=0"])
    budget = Budget("cpu", str(data), max_steps=2, image_size=16, batch_size=16, threads=1,
                    cache_dir=str(tmp_path / "cache"), extra=extra, select_l2=False)
    out = tmp_path / "rep"
    res = run_reproduction("extend", budget, seeds=[0], out_dir=out, d0=8, log=lambda m: None)
    key = f"{NAME}-d0_8"
    assert res["tables"] == {"extend": [key, "none"]}
    assert res["table_titles"]["extend"].startswith("a fixed random map")
    row = next(a for a in res["arms"] if a["key"] == key)
    run = out / "runs" / key / "seed0"
    spec_z = json.loads((run / "spectrum_embedding" / "spectrum.json").read_text())
    spec_r = json.loads((run / "spectrum_representation" / "spectrum.json").read_text())
    assert spec_z["dim"] == 8 and spec_r["dim"] == 512  # z = r P has d0 coordinates
    assert row["collapsed_dims_z"]["mean"] == spec_z["collapsed_dims"]
    assert row["paper_top1"] is None and row["d0"] == 8
    # the recorded train command names the arm and resolves to the run's config
    record = json.loads((run / "reproduce_arm.json").read_text())
    cmd = shlex.split(record["commands"]["train"])
    assert cmd[cmd.index("--projector") + 1] == NAME and cmd[cmd.index("--d0") + 1] == "8"
    monkeypatch.chdir(out)
    capsys.readouterr()
    assert main(cmd[1:] + ["--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((run / "config.json").read_text())
