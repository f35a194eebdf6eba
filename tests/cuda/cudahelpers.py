"""Helpers of the CUDA tests: a small cifar-preset config, one training step, nccl workers."""

from __future__ import annotations

import os

import pytest
import torch

from dimcollapse import build
from dimcollapse.config import apply_overrides, preset_config, resolve

needs_real_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a real CUDA device (nccl / CUDA kernels)")


def small_cfg(**over):
    """The `cifar` preset (ResNet-18, CIFAR stem, 32 px, LARS) at 32 pairs per step."""
    base = {"data.data_dir": ".", "loop.batch_size": 32, "optim.warmup_steps": 0,
            "loop.precision": "fp32"}
    return resolve(apply_overrides(preset_config("cifar"), {**base, **over}))


def step_record(cfg, dataset, device: torch.device, *, precision: str, world_size: int = 1,
                rank: int = 0, ddp: bool = False, steps: int = 1) -> list[dict]:
    """Run `steps` training steps of the loop's own parts; per step: loss, probe loss and the
    gradients (CPU float64 copies, by parameter name) before the update."""
    from dimcollapse.devices import resolve_precision
    from dimcollapse.optim import set_lr
    from dimcollapse.train.parts import assemble
    from dimcollapse.train.step import apply_update, forward_backward

    prec = resolve_precision(precision, device)
    batches = build.build_batches(cfg, dataset, rank=rank, world_size=world_size,
                                  device=device, start_step=0)
    parts = assemble(cfg, num_classes=len(dataset.classes), device=device, precision=prec,
                     world_size=world_size)
    model = parts.ddp
    if ddp and world_size == 1:  # what assemble does for >1 process, forced for one
        from dimcollapse import distributed

        parts.model = distributed.convert_sync_bn(parts.model, device_type=device.type)
        model = torch.nn.parallel.DistributedDataParallel(
            parts.model, device_ids=[device.index] if device.type == "cuda" else None)
    out = []
    for step in range(steps):
        batch = batches.batch(step)
        set_lr(parts.optimizer, cfg.optim.lr)
        parts.encoder.set_step(step)
        stats, _, _ = forward_backward(model, batch.view1, batch.view2, batch.target,
                                       loss_fn=parts.loss_fn, precision=prec,
                                       optimizer=parts.optimizer,
                                       channels_last=cfg.loop.channels_last)
        grads = {n: p.grad.detach().double().cpu() for n, p in parts.model.named_parameters()
                 if p.grad is not None}
        apply_update(parts.optimizer, parts.scaler)
        out.append({"loss": stats.loss, "probe_loss": stats.probe_loss, "grads": grads,
                    "count": stats.count})
    return out


def flat(grads: dict) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for _, g in sorted(grads.items())])


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||."""
    return float((a - b).norm() / b.norm())


def nccl_worker(rank: int, world: int, port: int, out_dir: str, n_images: int,
                backend: str = "nccl") -> None:
    """One nccl rank on cuda:rank (spawned). Writes out_dir/nccl-<rank>.pt with:

    - "ddp" (world 1 only): DDP + SyncBatchNorm step and the plain step of the same model;
    - "syncbn": torch's SyncBatchNorm autograd function (the kernels nn.SyncBatchNorm runs
      with more than one rank) against F.batch_norm on the same input, forward and backward;
    - "steps" (world > 1): the loop's parts under this group (DDP + nn.SyncBatchNorm).

    backend="gloo" runs the same code on the CPU (a dry run of this worker, by hand).
    """
    from view_fakes import memory_dataset

    from dimcollapse import distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    info = distributed.init_from_env(backend=backend, timeout_s=120)
    device = info.device
    ds = memory_dataset(n_images, 32, 32)
    cfg = small_cfg(**{"model.sync_bn": True})
    record: dict = {"world": world, "backend": torch.distributed.get_backend()}
    if world == 1:
        record["ddp"] = step_record(cfg, ds, device, precision="fp32", ddp=True)
        record["plain"] = step_record(cfg, ds, device, precision="fp32")
    if device.type == "cuda":  # batch_norm_stats and friends are CUDA kernels only
        record["syncbn"] = _syncbn_case(device, world, rank)
    if world > 1:
        record["steps"] = step_record(cfg, ds, device, precision="fp32", world_size=world,
                                      rank=rank)
    torch.save(record, os.path.join(out_dir, f"nccl-{rank}.pt"))
    distributed.barrier()
    distributed.shutdown()


def _syncbn_case(device: torch.device, world: int, rank: int) -> dict:
    import torch.nn.functional as F
    from torch.nn.modules._functions import SyncBatchNorm as SyncBNFunction

    g = torch.Generator().manual_seed(0)
    full = torch.randn(8 * world, 16, 6, 6, generator=g, dtype=torch.float32) * 3 + 1
    w = torch.rand(16, generator=g) + 0.5
    b = torch.randn(16, generator=g)
    up = torch.randn_like(full)
    mine = slice(8 * rank, 8 * (rank + 1))

    def run(fn):
        x = full[mine].clone().to(device).requires_grad_(True)
        wd = w.clone().to(device).requires_grad_(True)
        bd = b.clone().to(device).requires_grad_(True)
        rm, rv = torch.zeros(16, device=device), torch.ones(16, device=device)
        y = fn(x, wd, bd, rm, rv)
        y.backward(up[mine].to(device))
        return {"y": y.detach().cpu(), "dx": x.grad.cpu(), "dw": wd.grad.cpu(),
                "db": bd.grad.cpu(), "rm": rm.cpu(), "rv": rv.cpu()}

    group = torch.distributed.group.WORLD
    sync = run(lambda x, wd, bd, rm, rv: SyncBNFunction.apply(x, wd, bd, rm, rv, 1e-5, 0.1,
                                                                group, world))
    # Reference: one process holding the whole batch (the global-batch statistics).
    ref_x = full.clone().to(device).requires_grad_(True)
    ref_w = w.clone().to(device).requires_grad_(True)
    ref_b = b.clone().to(device).requires_grad_(True)
    rm, rv = torch.zeros(16, device=device), torch.ones(16, device=device)
    y = F.batch_norm(ref_x, rm, rv, ref_w, ref_b, training=True, momentum=0.1, eps=1e-5)
    y.backward(up.to(device))
    ref = {"y": y.detach()[mine].cpu(), "dx": ref_x.grad[mine].cpu(),
           "dw": ref_w.grad.cpu(), "db": ref_b.grad.cpu(), "rm": rm.cpu(), "rv": rv.cpu()}
    return {"sync": sync, "ref": ref}
