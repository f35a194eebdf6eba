"""run.json status: a `running` left by a dead process reads as `interrupted` (runstatus)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

from dimcollapse.errors import UserError
from dimcollapse.runstatus import (
    _start_ticks,
    one_line,
    process_fields,
    refresh_status,
    stale_reason,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process now
    return proc.pid


def _write(tmp_path, **info):
    (tmp_path / "run.json").write_text(json.dumps(info))
    return tmp_path


def test_dead_process_reads_as_interrupted_and_is_recorded(tmp_path):
    run = _write(tmp_path, status="running", pid=_dead_pid(), host=platform.node(),
                 heartbeat_utc="2026-01-01T00:00:00Z", checkpoint_step=40)
    info = refresh_status(run)
    assert info["status"] == "interrupted"
    assert "last checkpoint at step 40" in info["interrupted_reason"]
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


def test_live_process_other_host_and_finished_runs_are_left_alone(tmp_path):
    me = process_fields()
    assert stale_reason({"status": "running", **me}) is None  # this very process
    assert stale_reason({"status": "running", "pid": _dead_pid(), "host": "elsewhere"}) is None
    assert stale_reason({"status": "complete", "pid": _dead_pid(),
                         "host": platform.node()}) is None
    assert stale_reason({"status": "running"}) is None  # no pid recorded: cannot tell
    assert refresh_status(tmp_path) == {}


def test_reused_pid_is_not_the_recorded_process(tmp_path):
    me = process_fields()
    if me["pid_start"] is None:  # no /proc: pid reuse cannot be told apart
        return
    parent = os.getppid()
    # alive, but started at another time than recorded (the parent's own start + 1 tick: the
    # parent may have started in the tick before this process, so "mine - 1" can be its own)
    info = {"status": "running", **me, "pid": parent,
            "pid_start": _start_ticks(parent) + 1}
    assert stale_reason(info) is not None


def test_one_line():
    assert one_line(UserError("bad file x.jpg; delete it\nmore")) == "bad file x.jpg; delete it"
    assert one_line(RuntimeError("boom\ntrace")) == "RuntimeError: boom"
    assert one_line(MemoryError()) == "MemoryError"
