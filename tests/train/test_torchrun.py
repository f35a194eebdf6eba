"""torchrun beyond one process: two agents ("nodes") on 127.0.0.1, elastic restarts, and a
rendezvous that cannot be reached. Run alone with `pytest -m torchrun`.

Every agent binds 127.0.0.1 only (rendezvous endpoint, --local-addr, gloo on `lo`), uses a
free port, runs in its own session and is SIGKILLed with all its workers in a `finally`.
The commands are those of docs/training.md ("Several machines").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torchrunhelpers import (
    TORCHRUN,
    group_alive,
    start,
    stop_all,
    tails,
    torchrun_args,
    torchrun_env,
    wait_until,
    worker_logs,
    workers,
)
from trainhelpers import REPO, cli_args, free_port, tiny_overrides

pytestmark = [pytest.mark.torchrun, pytest.mark.ddp, pytest.mark.slow]

FLOAT64_TRAIN = str(REPO / "tests" / "train" / "float64_train.py")


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in open(run_dir / "metrics.jsonl")]


def test_two_torchrun_nodes_on_loopback_equal_one_process(tiny_data, tmp_path):
    """--nnodes 2 --nproc_per_node 1, c10d rendezvous: the float64 weights after 4 steps equal
    one process's with the same global batch to 1e-10; only the node holding global rank 0
    writes (into its own cwd, --out is relative); the other node's cwd stays empty."""
    over = tiny_overrides(tiny_data, tmp_path / "cache", **{"loop.max_steps": 4})
    args = [FLOAT64_TRAIN, *cli_args(over), "--out", "run"]
    (tmp_path / "one").mkdir()
    one = subprocess.run([sys.executable, *args], cwd=tmp_path / "one", env=torchrun_env(),
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-3000:]

    port, nodes = free_port(), [tmp_path / "node0", tmp_path / "node1"]
    logs = [tmp_path / "agent0.log", tmp_path / "agent1.log"]
    procs = []
    try:
        for i, cwd in enumerate(nodes):
            cwd.mkdir()
            cmd = [*TORCHRUN, *torchrun_args(nnodes=2, nproc=1, port=port, run_id="loopback",
                                             log_dir=tmp_path / f"logs{i}"), *args]
            procs.append(start(cmd, cwd=cwd, log=logs[i]))
        rcs = [p.wait(timeout=150) for p in procs]
    finally:
        stop_all(procs)
    assert rcs == [0, 0], tails(logs)

    # c10d assigns global ranks in order of arrival: find the node that got rank 0
    contents = [sorted(p.name for p in cwd.rglob("*")) for cwd in nodes]
    writer = [i for i, c in enumerate(contents) if c]
    assert len(writer) == 1, contents
    (w,) = writer
    assert contents[1 - w] == [], contents  # the other node's cwd holds nothing at all
    assert contents[w] == sorted(["run", "checkpoint_final.pt", "config.json", "metrics.jsonl",
                                  "run.json"]), contents[w]
    assert "dimcollapse train: done: step 4" in logs[w].read_text()
    assert "dimcollapse train:" not in logs[1 - w].read_text()  # rank 1 says nothing

    run = json.loads((nodes[w] / "run" / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "complete"
    a, b = _load(tmp_path / "one" / "run" / "checkpoint_final.pt"), _load(
        nodes[w] / "run" / "checkpoint_final.pt")
    assert a["step"] == b["step"] == 4
    compared = 0
    for part in ("backbone", "projector", "classifier"):
        assert a[part].keys() == b[part].keys()
        for name, ta in a[part].items():
            tb = b[part][name]
            if not ta.is_floating_point():
                assert torch.equal(ta, tb), (part, name)
                continue
            assert ta.dtype == tb.dtype == torch.float64, (part, name)  # not float32 by accident
            err = (tb - ta).norm().item()
            assert err <= 1e-10 * ta.norm().item() + 1e-12, f"{part}.{name}: {err}"
            compared += 1
    assert compared > 100
    la, lb = _losses(tmp_path / "one" / "run"), _losses(nodes[w] / "run")
    assert lb == pytest.approx(la, rel=1e-10) and la[0] != la[-1]  # the weights moved


def _elastic_cmd(tmp_path, args, *, port, name, max_restarts):
    return [*TORCHRUN, *torchrun_args(nnodes=1, nproc=2, port=port, run_id=name,
                                      log_dir=tmp_path / f"logs-{name}",
                                      max_restarts=max_restarts,
                                      # the survivor sees its peer's death (gloo, ~1-2 s) and
                                      # exits with its one-line error before the agent looks:
                                      # at torchrun's default 0.1 s the agent may SIGKILL it
                                      # first, silently (seen in CI on a quiet machine)
                                      monitor_interval_s=5),
            "-m", "dimcollapse", "train", *args, "--out", str(tmp_path / name)]


def _kill_worker(agent, rank, attempt, *, procs, logs, timeout=120):
    pid = wait_until(lambda: workers(agent.pid).get((rank, attempt)), timeout=timeout,
                     what=f"worker rank {rank} of attempt {attempt}", procs=procs, logs=logs)
    os.kill(pid, signal.SIGKILL)
    return pid


def test_elastic_restart_after_a_killed_rank_resumes_bit_for_bit(tiny_data, tmp_path):
    """torchrun --max-restarts 1: SIGKILL a worker after the first checkpoint; torchrun restarts
    the group, both ranks resume from checkpoint_last.pt, and the final weights, optimizer state
    and logged losses equal an uninterrupted 2-process run's bit for bit. A second kill beyond
    the restart budget ends every process (non-zero; the survivor with one error line)."""
    over = tiny_overrides(tiny_data, tmp_path / "cache", **{"loop.max_steps": 6})
    args = cli_args(over)
    procs, t0 = [], time.monotonic()

    def phase(what):  # wall times, shown with pytest -s
        print(f"{time.monotonic() - t0:6.1f} s  {what}", flush=True)

    try:
        ref_log = tmp_path / "ref.log"
        ref = start(_elastic_cmd(tmp_path, args, port=free_port(), name="ref", max_restarts=1),
                    cwd=tmp_path, log=ref_log)
        procs.append(ref)
        assert ref.wait(timeout=150) == 0, tails([ref_log])
        phase("uninterrupted run done")

        # 1. one kill: restarted, resumed, identical
        log = tmp_path / "elastic.log"
        agent = start(_elastic_cmd(tmp_path, args, port=free_port(), name="elastic",
                                   max_restarts=1), cwd=tmp_path, log=log)
        procs.append(agent)
        wait_until(lambda: (tmp_path / "elastic" / "checkpoint_last.pt").exists(), timeout=150,
                   what="the first checkpoint", procs=[agent], logs=[log])
        phase("first checkpoint")
        _kill_worker(agent, 1, 0, procs=[agent], logs=[log])
        assert agent.wait(timeout=150) == 0, tails([log])
        phase("restarted run done")

        # 2. two kills with a budget of one restart: every process ends, none hangs. The first
        # kill (at the worker's birth) only spends the budget; the second is mid-run.
        log2 = tmp_path / "budget.log"
        agent2 = start(_elastic_cmd(tmp_path, args, port=free_port(), name="budget",
                                    max_restarts=1), cwd=tmp_path, log=log2)
        procs.append(agent2)
        _kill_worker(agent2, 1, 0, procs=[agent2], logs=[log2])
        metrics = tmp_path / "budget" / "metrics.jsonl"
        wait_until(lambda: workers(agent2.pid).get((1, 1)) and metrics.exists()
                   and metrics.read_text().count("\n") >= 1, timeout=150,
                   what="the restarted group's first step", procs=[agent2], logs=[log2])
        phase("budget run: restarted")
        killed_at = time.monotonic()
        _kill_worker(agent2, 1, 1, procs=[agent2], logs=[log2])
        rc2 = agent2.wait(timeout=90)
        ended_s = time.monotonic() - killed_at
        wait_until(lambda: not group_alive(agent2.pid), timeout=30, what="the workers to end")
        phase(f"budget run: all ended {ended_s:.1f} s after the second kill")
    finally:
        stop_all(procs)

    # the resumed run: two starts, the second from a checkpoint strictly inside the run
    run = json.loads((tmp_path / "elastic" / "run.json").read_text())
    assert run["status"] == "complete" and run["world_size"] == 2
    starts = [s["step"] for s in run["starts"]]
    assert len(starts) == 2 and starts[0] == 0 and 0 < starts[1] < 6, starts
    a, b = _load(tmp_path / "ref" / "checkpoint_final.pt"), _load(
        tmp_path / "elastic" / "checkpoint_final.pt")
    assert a["step"] == b["step"] == 6
    for part in ("backbone", "projector", "classifier"):
        assert a[part].keys() == b[part].keys()
        for name, ta in a[part].items():
            assert torch.equal(ta, b[part][name]), f"{part}.{name} differs"
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and len(sa) > 60
    for k in sa:
        assert torch.equal(sa[k]["momentum_buffer"], sb[k]["momentum_buffer"]), k
    assert _losses(tmp_path / "elastic") == _losses(tmp_path / "ref")
    # rank 0 of attempt 1 resumed from the checkpoint; rank 1 did too, or the loop's start-step
    # check (distributed.check_same_on_all_ranks) would have stopped both
    restarted = worker_logs(tmp_path / "logs-elastic", 1, 0)
    assert f"steps {starts[1]}->6" in restarted, restarted[-2000:]

    # beyond the budget
    assert rc2 != 0, tails([log2])
    assert ended_s < 60, ended_s
    survivor = worker_logs(tmp_path / "logs-budget", 1, 0)
    errors = [ln for ln in survivor.splitlines() if ln.startswith("dimcollapse train: error")]
    assert len(errors) == 1, survivor[-3000:]
    assert errors[0].startswith("dimcollapse train: error: rank 0: another process of this "
                                "2-process run died"), errors
    assert "Traceback" not in survivor, survivor[-3000:]
    agent_text = log2.read_text()
    assert "Signal 9 (SIGKILL)" in agent_text, agent_text[-3000:]


_WRONG_ENV_RANK = """
import sys
from dimcollapse import distributed
from dimcollapse.cli import main
distributed.DEFAULT_CONNECT_TIMEOUT_S = 5.0  # the default (300 s) made short for the test
sys.exit(main(["train", *sys.argv[1:]]))
"""


def test_a_rank_that_cannot_reach_the_rendezvous_fails_in_bounded_time(tiny_data, tmp_path):
    """Wrong port, three ways, all at once: (a) a torchrun agent whose --rdzv-endpoint names
    a port nobody serves (is_host=false: what a second machine does) fails after ~2 x
    read_timeout with torchrun's RendezvousConnectionError; (b) the agent on the right port,
    left alone, gives up after join_timeout; (c) a rank started by hand with MASTER_PORT
    pointing nowhere exits 2 with our one-line error after the connect timeout."""
    over = tiny_overrides(tiny_data, tmp_path / "cache", **{"loop.max_steps": 2})
    args = [*cli_args(over), "--out", str(tmp_path / "run")]
    port, wrong = free_port(), free_port()
    logs = [tmp_path / "good.log", tmp_path / "wrong.log", tmp_path / "env.log"]
    agent = [*TORCHRUN, "--nnodes", "2", "--nproc_per_node", "1", "--rdzv-backend", "c10d",
             "--rdzv-id", "unreachable", "--local-addr", "127.0.0.1"]
    cmds = [
        [*agent, "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-conf", "join_timeout=20",
         "--log-dir", str(tmp_path / "logs-good"), "-m", "dimcollapse", "train", *args],
        [*agent, "--rdzv-endpoint", f"127.0.0.1:{wrong}",
         "--rdzv-conf", "is_host=false,read_timeout=10", "--log-dir",
         str(tmp_path / "logs-wrong"), "-m", "dimcollapse", "train", *args],
    ]
    procs, ended = [], {}
    t0 = time.monotonic()
    try:
        for cmd, log in zip(cmds, logs, strict=False):
            procs.append(start(cmd, cwd=tmp_path, log=log))
        env = torchrun_env() | {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1",
                                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(wrong)}
        with open(logs[2], "w") as f:
            procs.append(subprocess.Popen([sys.executable, "-c", _WRONG_ENV_RANK, *args],
                                          cwd=tmp_path, env=env, stdout=f,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        while len(ended) < 3 and time.monotonic() - t0 < 90:
            for i, p in enumerate(procs):
                if i not in ended and p.poll() is not None:
                    ended[i] = (p.returncode, time.monotonic() - t0)
            time.sleep(0.1)
    finally:
        stop_all(procs)
    assert len(ended) == 3, f"still waiting after 90 s: {sorted(set(range(3)) - set(ended))}"
    print({name: f"{ended[i][1]:.1f} s" for i, name in enumerate(("good", "wrong", "env"))})
    (rc_good, _), (rc_wrong, _), (rc_env, _) = ended[0], ended[1], ended[2]
    good, bad, env_text = (log.read_text() for log in logs)
    assert rc_wrong != 0 and "RendezvousConnectionError: The connection to the C10d store " \
        "has failed" in bad, bad[-2000:]
    assert rc_good != 0 and "RendezvousTimeoutError" in good, good[-2000:]
    assert rc_env == 2, env_text[-2000:]
    assert env_text.strip().splitlines() == [
        f"dimcollapse train: error: rank 1 of 2 cannot reach the rendezvous at 127.0.0.1:"
        f"{wrong} (MASTER_ADDR:MASTER_PORT) within 5 s (Connection refused): check that rank 0 "
        "is running and that every rank was given its host and the same port"], env_text
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written
