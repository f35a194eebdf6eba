"""nccl and torch's SyncBatchNorm on the GPU, in spawned processes (one per GPU, at most two).

NCCL refuses two ranks on one GPU ("Duplicate GPU detected"), so on a one-GPU machine the
group has one rank: DDP with nn.SyncBatchNorm must then give the plain step's loss and
gradients, and SyncBatchNorm's own autograd function (the statistics all-gather and gradient
all-reduce that nn.SyncBatchNorm runs with more ranks) must equal F.batch_norm. With >= 2 GPUs
two nccl ranks must also equal one process holding the whole batch (the gloo version of that
check, on the CPU, is tests/train/test_ddp.py).
"""

import pytest
import torch
import torch.multiprocessing as mp
from cudahelpers import flat, nccl_worker, needs_real_cuda, rel_err, small_cfg, step_record
from trainhelpers import free_port
from view_fakes import memory_dataset

pytestmark = [needs_real_cuda, pytest.mark.ddp]

N_IMAGES = 64


@pytest.fixture(scope="module")
def nccl(tmp_path_factory):
    world = min(torch.cuda.device_count(), 2)
    tmp = tmp_path_factory.mktemp("nccl")
    mp.start_processes(nccl_worker, args=(world, free_port(), str(tmp), N_IMAGES),
                       nprocs=world, join=True, start_method="spawn")
    return [torch.load(tmp / f"nccl-{r}.pt", weights_only=True) for r in range(world)]


def test_the_group_runs_nccl(nccl):
    assert [r["backend"] for r in nccl] == ["nccl"] * len(nccl)
    assert nccl[0]["world"] == len(nccl)


def test_one_rank_ddp_with_syncbn_equals_the_plain_step(nccl):
    if len(nccl) > 1:
        pytest.skip("two GPUs: the two-rank comparison below covers DDP")
    (ddp,), (plain,) = nccl[0]["ddp"], nccl[0]["plain"]
    assert ddp["count"] == plain["count"] == 32
    assert ddp["loss"] == pytest.approx(plain["loss"], rel=1e-6)
    assert ddp["grads"].keys() == plain["grads"].keys() and len(plain["grads"]) > 60
    assert rel_err(flat(ddp["grads"]), flat(plain["grads"])) <= 1e-6


def test_syncbn_function_under_nccl_equals_batch_norm(nccl):
    for r in nccl:
        sync, ref = r["syncbn"]["sync"], r["syncbn"]["ref"]
        for key in ("y", "dx", "rm", "rv"):  # this rank's rows / the shared running stats
            assert rel_err(sync[key].double(), ref[key].double()) <= 1e-5, key
    for key in ("dw", "db"):  # per-rank partial sums (DDP all-reduces them afterwards)
        total = sum(r["syncbn"]["sync"][key].double() for r in nccl)
        assert rel_err(total, nccl[0]["syncbn"]["ref"][key].double()) <= 1e-5, key


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs (nccl: one rank each)")
def test_two_nccl_ranks_equal_one_process(nccl):
    cfg = small_cfg(**{"model.sync_bn": True})
    (one,) = step_record(cfg, memory_dataset(N_IMAGES, 32, 32), torch.device("cuda", 0),
                         precision="fp32")
    (two,) = nccl[0]["steps"]
    assert two["count"] == one["count"] == 32
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-4)
    assert rel_err(flat(two["grads"]), flat(one["grads"])) <= 1e-3
