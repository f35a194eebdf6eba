"""Run folder bookkeeping and the resume planner (which config a rerun uses)."""

import json
import os
import signal

import pytest

from dimcollapse.config import apply_overrides, config_to_dict, preset_config, resolve
from dimcollapse.errors import UserError
from dimcollapse.train.checkpoint import save_checkpoint
from dimcollapse.train.run_folder import RunFolder, plan_run
from dimcollapse.train.signals import StopRequest


def test_truncate_metrics_keeps_steps_up_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    folder = RunFolder(tmp_path)
    folder.metrics.write_text("".join(json.dumps({"step": s, "loss": s / 10}) + "\n"
                                      for s in range(1, 8)) + '{"step": 8, "lo')
    assert [r["step"] for r in folder.read_metrics()] == list(range(1, 8))
    folder.truncate_metrics(4)
    assert [r["step"] for r in folder.read_metrics()] == [1, 2, 3, 4]
    RunFolder(tmp_path, writer=False).truncate_metrics(1)  # readers never write
    assert len(folder.read_metrics()) == 4


def test_latest_checkpoint_prefers_final(tmp_path):
    folder = RunFolder(tmp_path)
    assert folder.latest_checkpoint() is None
    folder.last.write_bytes(b"x")
    assert folder.latest_checkpoint() == folder.last
    folder.final.write_bytes(b"x")
    assert folder.latest_checkpoint() == folder.final


def _fake_checkpoint(path, cfg):
    save_checkpoint(path, {"backbone": {}, "projector": {}, "classifier": {}, "optimizer": {},
                           "step": 2, "config": config_to_dict(cfg)})


def test_plan_fresh_run_is_preset_plus_overrides(tmp_path):
    cfg, ckpt = plan_run(tmp_path / "run", preset="cpu", overrides={"model.d0": 9})
    assert ckpt is None
    assert cfg == resolve(apply_overrides(preset_config("cpu"), {"model.d0": 9}))
    with pytest.raises(UserError, match="no checkpoint"):
        plan_run(tmp_path / "run", preset="cpu", resume="auto")


def test_plan_resume_uses_the_saved_config_and_rejects_changes(tmp_path):
    saved = resolve(apply_overrides(preset_config("cpu"), {"model.projector": "directclr",
                                                           "model.d0": 90}))
    folder = RunFolder(tmp_path)
    _fake_checkpoint(folder.last, saved)
    # No flags at all: the saved recipe, not the paper defaults.
    cfg, ckpt = plan_run(tmp_path)
    assert ckpt == folder.last and cfg == saved
    # Paths, device and logging cadence may change.
    cfg, _ = plan_run(tmp_path, overrides={"data.data_dir": "/elsewhere",
                                           "loop.log_every_steps": 1})
    assert cfg.data.data_dir == "/elsewhere" and cfg.model.d0 == 90
    # A full config equal to the saved one (the library call) is fine too.
    plan_run(tmp_path, overrides=config_to_dict(saved))
    with pytest.raises(UserError, match=r"model.d0=90 \(asked 64\)"):
        plan_run(tmp_path, overrides={"model.d0": 64})
    with pytest.raises(UserError, match="preset 'cpu', not 'cifar'"):
        plan_run(tmp_path, preset="cifar")
    # An explicit checkpoint path works from any folder.
    cfg, ckpt = plan_run(tmp_path / "new", resume=folder.last)
    assert ckpt == folder.last and cfg == saved


def test_stop_request_records_signals_and_restores_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM  # delivered synchronously to the main thread
        os.kill(os.getpid(), signal.SIGTERM)  # repeated SIGTERM: still just a request
        assert stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def test_stop_request_second_sigint_raises_keyboard_interrupt():
    with pytest.raises(KeyboardInterrupt), StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signum == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)
