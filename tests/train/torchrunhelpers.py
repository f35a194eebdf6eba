"""Helpers for the torchrun tests: launch agents on 127.0.0.1, find their workers, clean up.

Every agent runs in its own session (process group), so `stop_all` can SIGKILL the agent and
every worker it started, whatever state the test left them in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from trainhelpers import REPO, cli_env

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def torchrun_env() -> dict:
    """One thread per process, the worktree's sources, gloo on the loopback interface."""
    env = cli_env()
    for k in list(env):
        if k.startswith(("TORCHELASTIC_", "PET_", "GROUP_", "ROLE_", "LOCAL_WORLD")):
            env.pop(k)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo binds the loopback interface only
    return env


def torchrun_args(*, nnodes: int, nproc: int, port: int, run_id: str, log_dir: Path,
                  conf: str = "join_timeout=60", max_restarts: int = 0,
                  monitor_interval_s: float | None = None) -> list[str]:
    """The agent's flags: c10d rendezvous at 127.0.0.1:port, per-worker logs under log_dir."""
    extra = [] if monitor_interval_s is None else ["--monitor-interval", str(monitor_interval_s)]
    return [*extra,
        "--nnodes", str(nnodes), "--nproc_per_node", str(nproc),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
        "--rdzv-id", run_id, "--rdzv-conf", conf, "--local-addr", "127.0.0.1",
        "--max-restarts", str(max_restarts), "--log-dir", str(log_dir), "--tee", "3",
    ]


def start(cmd: list[str], *, cwd: Path, log: Path) -> subprocess.Popen:
    """Start `cmd` in a new session with stdout+stderr to `log`."""
    with open(log, "w") as f:
        return subprocess.Popen(cmd, cwd=cwd, env=torchrun_env(), stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGKILL each agent's whole process group (its workers included) and reap the agent."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def group_alive(pgid: int) -> bool:
    """True while any process (not a zombie) is left in process group `pgid`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def workers(agent_pid: int) -> dict[tuple[int, int], int]:
    """{(global rank, restart count): pid} of the live worker processes of an agent."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) != agent_pid or fields[0] == "Z":
                continue
            env = dict(kv.split("=", 1) for kv in
                       (entry / "environ").read_bytes().decode().split("\0") if "=" in kv)
        except (OSError, ValueError):
            continue
        if "RANK" in env and "TORCHELASTIC_RESTART_COUNT" in env:
            found[(int(env["RANK"]), int(env["TORCHELASTIC_RESTART_COUNT"]))] = int(entry.name)
    return found


def wait_until(cond: Callable[[], object], *, timeout: float, what: str,
               procs: list[subprocess.Popen] = (), logs: list[Path] = ()) -> object:
    """Poll `cond` every 50 ms until it returns something truthy; fail after `timeout` s or
    when one of `procs` exits first (with the tail of `logs`)."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"exited with {p.returncode} while waiting for {what}:\n"
                                     + tails(logs))
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n"
                                 + tails(logs))
        time.sleep(0.05)


def tails(logs: list[Path], n: int = 3000) -> str:
    return "\n".join(f"--- {p}\n{p.read_text()[-n:]}" for p in logs if p.exists())


def worker_logs(log_dir: Path, attempt: int, local_rank: int) -> str:
    """stderr of one worker of one attempt: LOG_DIR/<run id>_*/attempt_N/<local rank>/."""
    paths = sorted(log_dir.glob(f"*/attempt_{attempt}/{local_rank}/stderr.log"))
    assert len(paths) == 1, (log_dir, attempt, local_rank, paths)
    return paths[0].read_text()
