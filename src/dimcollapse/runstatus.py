"""The `status` of a run folder's run.json, kept truthful when the process cannot write it.

A training process records `status: "running"` with who it is (`pid`, `host`, the process's
start time `pid_start`) and refreshes `heartbeat_utc` / `checkpoint_step` at every checkpoint.
It records `failed` (with the one-line `error`) when it stops on an exception it can catch. A
`kill -9`, an OOM kill or a power cut leave `running` behind: `refresh_status` (called by every
command that reads a run folder: train's resume, probe, spectrum RUN, compare, reproduce) sees
that the recorded process no longer exists and rewrites the status as `interrupted`, naming
the last checkpoint. A process on another host cannot be checked, so its status is left alone.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from dimcollapse.errors import UserError
from dimcollapse.runinfo import write_json

RUN_JSON = "run.json"  # train.run_folder's name


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), else None.

    Told apart from a later process that got the same pid after the first one died."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "(comm)", which may hold spaces
    try:
        if fields[0] in ("Z", "X"):  # a zombie: dead, not yet reaped by its parent
            return -1
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_fields() -> dict[str, Any]:
    """Who is running: pid, host and (on Linux) the process start time, plus a heartbeat."""
    pid = os.getpid()
    return {"pid": pid, "host": platform.node(), "pid_start": _start_ticks(pid),
            "heartbeat_utc": utc_now()}


def process_alive(pid: int, pid_start: int | None = None) -> bool:
    """True when process `pid` (started at `pid_start` ticks, when known) exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    now = _start_ticks(pid)
    if now == -1:
        return False
    return pid_start is None or now is None or now == pid_start


def stale_reason(info: dict[str, Any]) -> str | None:
    """Why a `running` run.json is stale (its process is gone), or None if it may be live."""
    if info.get("status") != "running":
        return None
    pid, host = info.get("pid"), info.get("host")
    if not isinstance(pid, int):
        return None  # written before pids were recorded: cannot tell
    if host != platform.node():
        return None  # another machine's process cannot be checked from here
    if pid == os.getpid() or process_alive(pid, info.get("pid_start")):
        return None
    step = info.get("checkpoint_step")
    last = (f"last checkpoint at step {step}" if step is not None
            else "no checkpoint was written")
    return (f"process {pid} on {host} ended without recording why (killed?); last heartbeat "
            f"{info.get('heartbeat_utc', 'unknown')}, {last}")


def refresh_status(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read run_dir/run.json; a stale `running` becomes `interrupted` (rewritten when the folder
    is writable). Returns the (possibly updated) record, {} when there is none."""
    path = Path(run_dir) / RUN_JSON
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    reason = stale_reason(info)
    if reason is not None:
        info.update(status="interrupted", interrupted_reason=reason, interrupted_seen_utc=utc_now())
        try:
            write_json(path, info)
        except OSError:
            pass  # a read-only folder: report it without recording
    return info


def one_line(err: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, after its type name unless it is a UserError
    (whose message already says what is wrong and how to fix it); at most `limit` characters."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    if not isinstance(err, UserError):
        first = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return first[:limit]
