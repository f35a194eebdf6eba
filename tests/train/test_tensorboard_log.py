"""`dimcollapse train --tensorboard`: RUN/tensorboard/ holds the metrics.jsonl records, read back
with TensorBoard's own EventAccumulator; a resumed run purges what the killed one wrote past
the checkpoint."""

import json

import numpy as np
import pytest
from trainhelpers import cli_args, tiny_overrides

from dimcollapse.cli import main as cli_main

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def _events(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every event
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _expected(records):
    """{key: [(step, value as float32)]} of every number in the records but the step."""
    out = {}
    for r in records:
        for key, value in r.items():
            if key != "step":
                out.setdefault(key, []).append((r["step"], float(np.float32(value))))
    return out


def test_train_tensorboard_events_equal_metrics_jsonl(tiny_data, tmp_path):
    over = tiny_overrides(tiny_data, tmp_path / "cache", **{"loop.max_steps": 6,
                                                            "loop.log_every_steps": 2})
    rc = cli_main(["train", *cli_args(over), "--tensorboard", "--out", str(tmp_path / "run"),
                   "--quiet"])
    assert rc == 0
    run = tmp_path / "run"
    records = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert [r["step"] for r in records] == [2, 3, 4, 6]  # log every 2, spectrum every 3
    got = _events(run / "tensorboard")
    want = _expected(records)
    assert "rankme_z" in want and "loss" in want and "probe_acc" in want
    assert got == want  # every key, every step, the value rounded to TensorBoard's float32
    assert json.loads((run / "config.json").read_text())["loop"]["tensorboard"] is True


def test_without_the_flag_no_events(tiny_data, tmp_path):
    over = tiny_overrides(tiny_data, tmp_path / "cache", **{"loop.max_steps": 2})
    assert cli_main(["train", *cli_args(over), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_resumed_run_purges_steps_after_the_checkpoint(tmp_path):
    """A killed process logged steps 1..5 after its checkpoint at 4; the resumed one starts at
    4 and rewrites 5..: TensorBoard shows each step once, the new values."""
    from dimcollapse.monitor.tensorboard import TensorBoardLog

    first = TensorBoardLog(tmp_path / "tb")
    for step in range(1, 6):
        first.write({"step": step, "loss": 10.0 + step})
    first.close()
    second = TensorBoardLog(tmp_path / "tb", start_step=4)
    for step in range(5, 7):
        second.write({"step": step, "loss": 20.0 + step})
    second.close()
    assert _events(tmp_path / "tb")["loss"] == [(1, 11.0), (2, 12.0), (3, 13.0), (4, 14.0),
                                                (5, 25.0), (6, 26.0)]
