"""Checkpoint format: atomic write, weights_only read, validation, RNG capture/restore."""

import random

import numpy as np
import pytest
import torch

from dimcollapse.config import config_to_dict, preset_config
from dimcollapse.errors import UserError
from dimcollapse.train.checkpoint import (
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)


def _state(step=3):
    lin = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    lin(torch.randn(5, 4)).sum().backward()
    opt.step()
    return {"backbone": lin.state_dict(), "projector": {}, "classifier": lin.state_dict(),
            "optimizer": opt.state_dict(), "scaler": None, "step": step,
            "config": config_to_dict(preset_config("cpu")), "rng": capture_rng(),
            "git_sha": "abc", "metadata": {"command": "x"}}


def test_round_trip_is_weights_only_and_exact(tmp_path):
    state = _state()
    path = save_checkpoint(tmp_path / "c.pt", state)
    raw = torch.load(path, weights_only=True)  # what eval code will do
    assert raw["format"] == "dimcollapse-checkpoint" and raw["format_version"] == 1
    back = load_checkpoint(path)
    assert back["step"] == 3 and back["config"] == state["config"]
    for k, v in state["backbone"].items():
        assert torch.equal(back["backbone"][k], v)
    assert back["optimizer"]["state"][0]["momentum_buffer"].shape == (2, 4)
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_overwrite_is_atomic_when_the_write_fails(tmp_path):
    save_checkpoint(tmp_path / "c.pt", _state(step=1))

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(tmp_path / "c.pt", {**_state(step=2), "metadata": Boom()})
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_bad_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UserError, match="truncated or not a dimcollapse"):
        load_checkpoint(tmp_path / "torn.pt")
    torch.save({"model": {}}, tmp_path / "official.pth")
    with pytest.raises(UserError, match="not a dimcollapse training checkpoint"):
        load_checkpoint(tmp_path / "official.pth")
    state = _state()
    del state["optimizer"]
    save_checkpoint(tmp_path / "partial.pt", state)
    with pytest.raises(UserError, match="lacks optimizer"):
        load_checkpoint(tmp_path / "partial.pt")


def test_rng_capture_restore_replays_every_generator(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)  # noqa: NPY002
    random.seed(3)
    save_checkpoint(tmp_path / "r.pt", {"rng": capture_rng()})
    first = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    restore_rng(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2]
