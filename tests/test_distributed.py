"""2-process gloo tests of dimcollapse.distributed and of the losses under DDP, on CPU."""

import io
import os
import queue
import socket
import time
import traceback

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from dimcollapse import distributed
from dimcollapse.errors import UserError
from dimcollapse.losses import infonce, ntxent

WORLD = 2
N, DIM = 8, 6  # global batch, embedding size


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, world, port, fn, results, timeout_s):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        info = distributed.init_from_env(timeout_s=timeout_s)
        # as bytes: tensors put on a torch queue travel as shared-memory handles, which die
        # with this process
        buffer = io.BytesIO()
        torch.save(fn(info), buffer)
        results.put((rank, "ok", buffer.getvalue()))
        distributed.shutdown()
    except BaseException:
        results.put((rank, "error", traceback.format_exc()))
    finally:
        results.close()
        results.join_thread()  # flush the queue's feeder thread before leaving
        os._exit(0)  # skip interpreter teardown (a dead peer would make it wait)


def _spawn(fn, *, world=WORLD, timeout_s=60.0, deadline_s=120.0, wait_for=None):
    """Run fn(info) on `world` gloo ranks; return {rank: (status, value)} of the ranks that
    reported. Stops waiting once the ranks in `wait_for` (default: all) reported."""
    wait_for = set(range(world) if wait_for is None else wait_for)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_entry, args=(r, world, port, fn, results, timeout_s))
             for r in range(world)]
    for p in procs:
        p.start()
    out, end = {}, time.monotonic() + deadline_s
    try:
        # until every rank reported, or all exited with nothing left to read, or the deadline
        while not wait_for <= set(out) and time.monotonic() < end:
            try:
                rank, status, value = results.get(timeout=0.2)
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    break
                continue
            if status == "ok":
                value = torch.load(io.BytesIO(value))
            out[rank] = (status, value)
    finally:
        for p in procs:
            p.join(timeout=5 if wait_for == set(range(world)) else 0.1)
            if p.is_alive():  # only the processes this test started
                p.kill()
                p.join()
    return out


def _global_data():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(N, DIM, generator=g, dtype=torch.float64)
    z2 = torch.randn(N, DIM, generator=g, dtype=torch.float64)
    zg1 = torch.randn(N, 3, 4, generator=g, dtype=torch.float64)
    zg2 = torch.randn(N, 3, 4, generator=g, dtype=torch.float64)
    x = torch.randn(N, 5, generator=g, dtype=torch.float64)
    bn_x = torch.randn(N, 3, 2, 2, generator=g, dtype=torch.float64)
    bn_coeff = torch.randn(N, 3, 2, 2, generator=g, dtype=torch.float64)
    return z1, z2, zg1, zg2, x, bn_x, bn_coeff


LOSS_CASES = {
    "infonce": lambda a, b: infonce(a, b),
    "infonce-one-sided": lambda a, b: infonce(a, b, symmetric=False, temperature=0.3),
    "ntxent": lambda a, b: ntxent(a, b),
    "ntxent-unnormalised": lambda a, b: ntxent(a, b, normalize=False, temperature=2.0),
}


def _linear_model():
    torch.manual_seed(3)
    return nn.Linear(5, DIM).double()


def _bn():
    bn = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, -0.5]))
        bn.bias.copy_(torch.tensor([0.1, 0.0, -0.3]))
    return bn


def _work_main(info):
    rank, world = info.rank, info.world_size
    out = {"info": (info.rank, info.world_size, info.local_rank, str(info.device), info.is_main,
                    distributed.is_main(), distributed.get_world_size())}
    z1, z2, zg1, zg2, x, bn_x, bn_coeff = _global_data()
    n = N // world
    mine = slice(rank * n, (rank + 1) * n)

    # gather_with_grad: rank order forward, summed gradients backward
    t = (torch.arange(3, dtype=torch.float64) + 10 * rank).repeat(2, 1).requires_grad_()
    gathered = distributed.gather_with_grad(t)
    weights = torch.arange(gathered.numel(), dtype=torch.float64).view_as(gathered) * (rank + 1)
    (gathered * weights).sum().backward()
    out["gathered"] = gathered.detach()
    out["gather_grad"] = t.grad
    out["all_reduce"] = distributed.all_reduce_sum_(torch.tensor([float(rank + 1)]))
    distributed.barrier()

    # losses: each rank's loss and the gradient reaching its local embeddings
    for name, fn in {**LOSS_CASES, "infonce-groups": lambda a, b: infonce(a, b),
                     "ntxent-groups": lambda a, b: ntxent(a, b)}.items():
        a_full, b_full = (zg1, zg2) if name.endswith("groups") else (z1, z2)
        a = a_full[mine].clone().requires_grad_()
        b = b_full[mine].clone().requires_grad_()
        loss = fn(a, b)
        loss.backward()
        out[name] = (loss.item(), a.grad, b.grad)

    # DDP end to end: parameter gradients after DDP's averaging
    model = nn.parallel.DistributedDataParallel(_linear_model())
    loss = infonce(model(x[mine]), model(x[mine] * 0.5 + 1.0))
    loss.backward()
    out["ddp"] = [p.grad for p in model.parameters()]

    # global BatchNorm on CPU
    bn = distributed.convert_sync_bn(_bn())
    assert isinstance(bn, distributed.GlobalBatchNorm)
    xb = bn_x[mine].clone().requires_grad_()
    y = bn(xb)
    (y * bn_coeff[mine]).sum().backward()
    out["bn"] = (y.detach(), xb.grad, bn.weight.grad, bn.bias.grad, bn.running_mean.clone(),
                 bn.running_var.clone(), int(bn.num_batches_tracked))
    return out


@pytest.mark.ddp
def test_two_gloo_ranks_match_one_process():
    res = _spawn(_work_main)
    assert sorted(res) == [0, 1], res
    for status, value in res.values():
        assert status == "ok", value
    r0, r1 = res[0][1], res[1][1]
    assert r0["info"] == (0, 2, 0, "cpu", True, True, 2)
    assert r1["info"] == (1, 2, 1, "cpu", False, False, 2)

    # gather: concatenation in rank order; grad of rank r = sum over ranks of their weights
    expected = torch.tensor([[0.0, 1, 2], [0, 1, 2], [10, 11, 12], [10, 11, 12]],
                            dtype=torch.float64)
    assert torch.equal(r0["gathered"], expected) and torch.equal(r1["gathered"], expected)
    base = torch.arange(12, dtype=torch.float64).view(4, 3)
    assert torch.equal(r0["gather_grad"], 3 * base[:2])
    assert torch.equal(r1["gather_grad"], 3 * base[2:])
    assert r0["all_reduce"].item() == 3.0 == r1["all_reduce"].item()

    z1, z2, zg1, zg2, x, bn_x, bn_coeff = _global_data()
    cases = {**LOSS_CASES, "infonce-groups": LOSS_CASES["infonce"],
             "ntxent-groups": LOSS_CASES["ntxent"]}
    for name, fn in cases.items():
        a_full, b_full = (zg1, zg2) if name.endswith("groups") else (z1, z2)
        a, b = a_full.clone().requires_grad_(), b_full.clone().requires_grad_()
        loss = fn(a, b)
        loss.backward()
        # one process's loss is the mean of the ranks' losses; its gradient is the rank
        # gradients (which the gather summed over ranks) divided by the world size.
        assert abs((r0[name][0] + r1[name][0]) / 2 - loss.item()) < 1e-12, name
        ga = torch.cat([r0[name][1], r1[name][1]]) / WORLD
        gb = torch.cat([r0[name][2], r1[name][2]]) / WORLD
        torch.testing.assert_close(ga, a.grad, atol=1e-6, rtol=0, msg=name)
        torch.testing.assert_close(gb, b.grad, atol=1e-6, rtol=0, msg=name)
        assert a.grad.abs().max() > 1e-3  # a real gradient, not two zeros

    model = _linear_model()
    infonce(model(x), model(x * 0.5 + 1.0)).backward()
    for g0, g1, g in zip(r0["ddp"], r1["ddp"], model.parameters(), strict=True):
        torch.testing.assert_close(g0, g.grad, atol=1e-10, rtol=0)
        torch.testing.assert_close(g1, g.grad, atol=1e-10, rtol=0)

    bn = _bn()
    xb = bn_x.clone().requires_grad_()
    y = bn(xb)
    (y * bn_coeff).sum().backward()
    y0, gx0, gw0, gb0, rm0, rv0, nb0 = r0["bn"]
    y1, gx1, gw1, gb1, rm1, rv1, nb1 = r1["bn"]
    torch.testing.assert_close(torch.cat([y0, y1]), y.detach(), atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.cat([gx0, gx1]), xb.grad, atol=1e-10, rtol=0)
    torch.testing.assert_close(gw0 + gw1, bn.weight.grad, atol=1e-10, rtol=0)
    torch.testing.assert_close(gb0 + gb1, bn.bias.grad, atol=1e-10, rtol=0)
    for rm, rv, nb in ((rm0, rv0, nb0), (rm1, rv1, nb1)):
        torch.testing.assert_close(rm, bn.running_mean, atol=1e-12, rtol=0)
        torch.testing.assert_close(rv, bn.running_var, atol=1e-12, rtol=0)
        assert nb == 1


def _work_check_same(info):
    distributed.check_same_on_all_ranks(7, what="x", fix="y")  # agree: no error
    try:
        distributed.check_same_on_all_ranks(3 * info.rank, what="the start step", fix="share it")
    except UserError as err:
        return str(err)
    return None


@pytest.mark.ddp
def test_ranks_that_disagree_all_raise_the_same_user_error():
    res = _spawn(_work_check_same)
    assert sorted(res) == [0, 1] and all(s == "ok" for s, _ in res.values()), res
    for rank, (_, message) in res.items():
        assert message == (f"the ranks disagree on the start step (from 0 to 3; rank {rank} "
                           f"has {3 * rank}): share it")


def _work_dead_peer(info):
    if info.rank == 1:
        os._exit(0)  # dies without a word
    start = time.monotonic()
    try:
        distributed.all_reduce_sum_(torch.ones(4))
        distributed.barrier()
    except Exception as exc:  # what a surviving rank sees
        return ("raised", type(exc).__name__, time.monotonic() - start)
    return ("returned", None, time.monotonic() - start)


@pytest.mark.ddp
def test_dead_peer_makes_survivor_raise_instead_of_hang():
    res = _spawn(_work_dead_peer, timeout_s=10.0, deadline_s=90.0)
    assert 0 in res, "rank 0 hung: no result before the deadline"
    status, value = res[0]
    assert status == "ok", value
    assert value[0] == "raised", value
    assert value[2] < 60, value  # seconds until the survivor raised


def _work_stuck_peer(info):
    if info.rank == 1:
        time.sleep(60)  # alive but never joins the collective
        os._exit(0)
    start = time.monotonic()
    try:
        distributed.all_reduce_sum_(torch.ones(4))
    except Exception as exc:
        return ("raised", type(exc).__name__, time.monotonic() - start)
    return ("returned", None, time.monotonic() - start)


@pytest.mark.ddp
def test_stuck_peer_hits_the_process_group_timeout():
    res = _spawn(_work_stuck_peer, timeout_s=3.0, deadline_s=45.0, wait_for=[0])
    assert 0 in res, "rank 0 hung past the process-group timeout"
    status, value = res[0]
    assert status == "ok", value
    assert value[0] == "raised" and 2.5 < value[2] < 30, value


def test_single_process_fallback(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = distributed.init_from_env()
    assert (info.rank, info.world_size, info.local_rank, info.is_main) == (0, 1, 0, True)
    assert distributed.is_main() and not distributed.is_distributed()
    t = torch.randn(3, 2, requires_grad=True)
    assert distributed.gather_with_grad(t) is t
    assert torch.equal(distributed.all_reduce_sum_(torch.ones(2)), torch.ones(2))
    distributed.barrier()
    distributed.shutdown()


def test_global_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    def make():
        return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Flatten(),
                             nn.Linear(16, 4), nn.BatchNorm1d(4))

    ref, model = make(), distributed.convert_sync_bn(make())
    model.load_state_dict(ref.state_dict())  # same keys
    assert isinstance(model[1], distributed.GlobalBatchNorm)
    assert isinstance(model[4], distributed.GlobalBatchNorm)
    x = torch.randn(5, 3, 2, 2)
    torch.testing.assert_close(model(x), ref(x))
    torch.testing.assert_close(model[1].running_var, ref[1].running_var)
    model.eval(), ref.eval()
    torch.testing.assert_close(model(x), ref(x))


def test_agent_store_prefix_per_attempt_on_one_node_and_warning_across_nodes(monkeypatch):
    import datetime

    port, timeout = _free_port(), datetime.timedelta(seconds=5)  # a missing key fails in 5 s
    server = torch.distributed.TCPStore("127.0.0.1", port, 1, is_master=True, timeout=timeout,
                                        wait_for_workers=False)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("GROUP_WORLD_SIZE", "1")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "3")
    distributed._agent_store("127.0.0.1", port, 2, timeout).set("k", "v")
    assert server.get("dimcollapse/attempt_3/k") == b"v"  # a fresh namespace for attempt 3
    monkeypatch.setenv("GROUP_WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "1")
    with pytest.warns(UserWarning, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"):
        store = distributed._agent_store("127.0.0.1", port, 2, timeout)
    store.set("k2", "w")  # across nodes: no prefix (restart counts differ between agents)
    assert server.get("k2") == b"w"


def test_torchrun_env_without_master_is_a_user_error(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(UserError, match="MASTER_ADDR"):
        distributed.init_from_env()
