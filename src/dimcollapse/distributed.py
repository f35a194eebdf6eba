"""torch.distributed helpers: torchrun's environment, rank queries, and the one gather layer.

Everything here is a thin layer over `torch.distributed` (the engine: gloo on CPU, nccl on
CUDA). Every helper also works in a plain single process (no `torchrun`), where collectives are
identities, so library code calls them unconditionally.

- `init_from_env()` reads torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
  MASTER_PORT) and starts the process group with a timeout, so that a dead or stuck peer makes
  the other ranks raise instead of hanging forever. A rank that cannot reach MASTER_ADDR:PORT
  fails after `connect_timeout_s` with a one-line UserError, and under a single torchrun agent
  each worker-group restart gets its own keys in the agent's store (see `_agent_store`).
- `gather_with_grad(t)` is the gradient-passing all-gather used by the contrastive losses: a
  small autograd Function over `dist.all_gather` whose backward all-reduces (sums) every rank's
  gradient and keeps this rank's slice. (`torch.distributed.nn.functional.all_gather` does the
  same but is deprecated since torch 2.x and warns; this one behaves the same on every torch
  version we support.)
- `convert_sync_bn(model)` gives BatchNorm statistics over the global batch: torch's
  `nn.SyncBatchNorm` on accelerators; on CPU (where torch's kernel is CUDA-only) the
  `GlobalBatchNorm` below, which computes the same statistics with differentiable all-reduces.
"""

from __future__ import annotations

import datetime
import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from dimcollapse.errors import UserError

DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_CONNECT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: `rank` of `world_size`, its `local_rank` on the node, and the
    `device` it computes on. `is_main` is True on rank 0 only (the rank that writes files)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    is_main: bool


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise UserError(
            f"environment variable {name}={value!r} is not an integer; launch with torchrun, "
            "which sets RANK, WORLD_SIZE and LOCAL_RANK"
        ) from None


def init_from_env(
    backend: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
    connect_timeout_s: float | None = None,
) -> DistInfo:
    """Start torch.distributed from torchrun's environment, or fall back to one process.

    Under torchrun (RANK and WORLD_SIZE set): backend `nccl` when CUDA is available, else `gloo`
    (override with `backend=`); on CUDA the device is `cuda:LOCAL_RANK` and becomes the current
    device. Collectives that wait longer than `timeout_s` seconds raise (a peer died or hangs).
    A rank other than 0 that cannot open a TCP connection to MASTER_ADDR:MASTER_PORT within
    `connect_timeout_s` seconds (None: DEFAULT_CONNECT_TIMEOUT_S, read at call time) raises
    UserError (wrong address or port, or rank 0 never started) instead of waiting out
    `timeout_s` inside torch. Without torchrun: no process group, rank 0 of 1, `cuda:0` if
    available else `cpu`.
    Calling it again once the group is up returns the same DistInfo.
    """
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if not launched:
        device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
        return DistInfo(rank=0, world_size=1, local_rank=0, device=device, is_main=True)

    rank, world_size = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    kwargs: dict[str, Any]  # init_process_group's optional arguments (declared for mypy)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise UserError(
                f"RANK/WORLD_SIZE are set but {name} is not; launch with torchrun "
                "(it sets all of them) or unset RANK and WORLD_SIZE for one process"
            )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices are "
                "visible; pass --nproc_per_node at most the number of GPUs"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")

    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=timeout_s)
        addr, port = os.environ["MASTER_ADDR"], _env_int("MASTER_PORT")
        if rank != 0 or _uses_agent_store():  # rank 0 hosts the store itself otherwise
            wait_s = DEFAULT_CONNECT_TIMEOUT_S if connect_timeout_s is None else connect_timeout_s
            _wait_until_reachable(addr, port, rank=rank, world_size=world_size, timeout_s=wait_s)
        kwargs = {}
        if backend == "nccl":
            kwargs["device_id"] = device  # binds the communicator to this GPU eagerly
        if _uses_agent_store():
            kwargs["store"] = _agent_store(addr, port, world_size, timeout)
        else:
            kwargs["init_method"] = "env://"
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world_size, timeout=timeout, **kwargs
        )
    return DistInfo(
        rank=rank, world_size=world_size, local_rank=local_rank, device=device, is_main=rank == 0
    )


def _uses_agent_store() -> bool:
    """True under torchrun's c10d rendezvous, whose agent hosts the store the workers use."""
    return os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"


def _agent_store(addr: str, port: int, world_size: int, timeout: datetime.timedelta):
    """A client of the torchrun agent's TCPStore; on one node, a key prefix per restart attempt.

    torchrun 2.x keeps one store for the whole job and its restarts (`--max-restarts`) reuse
    it; the keys a dead attempt's process group wrote (gloo listening addresses, NCCL ids) are
    still there, so the restarted ranks read them and connect to dead peers ("Gloo
    connectFullMesh failed ... Connection refused", measured with torch 2.14; pytorch/pytorch
    issues 135712, 167288). Under one agent (GROUP_WORLD_SIZE 1) every worker sees the same
    TORCHELASTIC_RESTART_COUNT, so it makes a safe prefix. Across nodes each agent counts its
    own restarts and the counts can differ, so a prefix would split the group; there the fix is
    torch's own switch, TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in torchrun's environment (then
    this function is not used), and rank 0 warns when restarts are asked for without it.
    """
    client = dist.TCPStore(addr, port, world_size, is_master=False, timeout=timeout)
    if os.environ.get("GROUP_WORLD_SIZE", "1") == "1":
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        return dist.PrefixStore(f"dimcollapse/attempt_{attempt}", client)
    if os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") != "0" and _env_int("RANK") == 0:
        warnings.warn("torchrun --max-restarts over several nodes: set "
                      "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in torchrun's environment on every "
                      "node, or a restarted group connects to the dead one's addresses and fails "
                      "(pytorch/pytorch#135712); see docs/training.md", stacklevel=3)
    return client


def _wait_until_reachable(addr: str, port: int, *, rank: int, world_size: int,
                          timeout_s: float) -> None:
    """Return once a TCP connection to addr:port opens; UserError after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = max(deadline - time.monotonic(), 0.1)
        try:
            with socket.create_connection((addr, port), timeout=min(5.0, left)):
                return
        except OSError as err:
            why = err.strerror or type(err).__name__
        if time.monotonic() >= deadline:
            raise UserError(
                f"rank {rank} of {world_size} cannot reach the rendezvous at {addr}:{port} "
                f"(MASTER_ADDR:MASTER_PORT) within {timeout_s:g} s ({why}): check that rank 0 "
                "is running and that every rank was given its host and the same port"
            )
        time.sleep(0.25)


def is_distributed() -> bool:
    """True when a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, and in a single process: the process that writes files and logs."""
    return get_rank() == 0


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums the gradients of all ranks and returns this rank's
    slice (an all-reduce then a slice: the same result as a reduce-scatter, on every backend)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.n = dist.get_rank(), t.shape[0]
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: y = sum_r x_r on every rank, so dL/dx_r = sum_r' dL_r'/dy."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        out = t.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Concatenate `t` from every rank along dim 0, in rank order, keeping gradients.

    Shape: (n, ...) on each rank -> (world_size * n, ...); every rank must pass the same shape
    (equal local batches). Backward: this rank's slice receives the *sum* over ranks of the
    gradients that each rank's loss sends to it. Identity in a single process.
    """
    if not is_distributed():
        return t
    return _GatherWithGrad.apply(t)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of `t` over ranks (a new tensor); identity in a single process."""
    if not is_distributed():
        return t
    return _AllReduceSum.apply(t)


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    """Sum `t` over ranks in place (no gradient) and return it; identity in a single process."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def check_same_on_all_ranks(value: int, *, what: str, fix: str) -> None:
    """Raise the same UserError on every rank unless all ranks pass the same integer `value`.

    One all-reduce (max of value and of -value), so every rank learns the disagreement and
    none is left waiting in a later collective. No-op in a single process.
    """
    if not is_distributed():
        return
    device: str | torch.device = "cpu"
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    t = torch.tensor([value, -value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    high, low = int(t[0]), -int(t[1])
    if high != low:
        raise UserError(f"the ranks disagree on {what} (from {low} to {high}; rank "
                        f"{get_rank()} has {value}): {fix}")


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    """Destroy the process group if one is running (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch over all ranks.

    Same parameters, buffers and state_dict keys as `nn.BatchNorm{1,2,3}d`. In training mode
    under a multi-rank process group the per-channel mean and (biased) variance are computed
    from all ranks' inputs with two differentiable all-reduces (two passes: mean first, then
    the centred second moment, which is more accurate than E[x^2] - E[x]^2), so forward outputs,
    running statistics and gradients equal those of one process holding the whole batch (for
    equal or unequal local batches). Otherwise it is a plain BatchNorm. Used on CPU, where
    torch's `nn.SyncBatchNorm` kernel does not run. Shape: (N, C, *) -> (N, C, *).
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if not (self.training and is_distributed()):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        # Statistics in float32 at least (bf16/fp16 inputs under autocast), float64 kept.
        x = input if input.dtype == torch.float64 else input.float()
        # The element count per channel carries no gradient; float64 keeps it exact.
        count_t = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float64, device=x.device)
        dist.all_reduce(count_t)
        count = float(count_t.item())
        mean = all_reduce_sum(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = all_reduce_sum(centred.pow(2).sum(dims)) / count
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), count)
        return y.to(input.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        # Same rule as torch's BatchNorm: momentum (or cumulative average when None), and the
        # unbiased variance in the running estimate.
        assert self.num_batches_tracked is not None and self.running_mean is not None \
            and self.running_var is not None  # track_running_stats: the buffers exist
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased = var * (count / max(count - 1.0, 1.0))
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


def convert_sync_bn(model: nn.Module, *, device_type: str | None = None) -> nn.Module:
    """Replace every BatchNorm in `model` by one that normalises with global-batch statistics.

    `device_type` (default: where the model's parameters live) picks the implementation:
    torch's `nn.SyncBatchNorm` for cuda/xpu/hpu, `GlobalBatchNorm` for cpu. Parameters, buffers
    and state_dict keys are kept. Returns the (possibly new) root module.
    """
    if device_type is None:
        first = next(model.parameters(), None)
        device_type = first.device.type if first is not None else "cpu"
    if device_type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_to_global_bn(model)


def _convert_to_global_bn(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, GlobalBatchNorm
    ):
        out = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        if module.track_running_stats:
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, _convert_to_global_bn(child))
    return out
