"""Device and mixed-precision choice: which autocast dtype, and whether a GradScaler is needed.

The paper trains with mixed precision (Appendix D; fp16 + loss scaling on V100). Here `auto`
picks bf16 where the hardware runs it natively (CPUs with AVX-512 BF16 or AMX, CUDA GPUs with
bf16 support) because bf16 needs no loss scaling; fp16 on older GPUs (with a GradScaler);
fp32 otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dimcollapse.errors import UserError


@dataclass(frozen=True)
class Precision:
    """The resolved precision: `name` in fp32/bf16/fp16, the autocast dtype (None: off)."""

    name: str
    dtype: torch.dtype | None
    device_type: str

    @property
    def needs_scaler(self) -> bool:
        return self.dtype is torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    checks: list[Callable[[], bool]] = [
        getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False),
        getattr(torch.cpu, "_is_amx_tile_supported", lambda: False),
    ]
    return any(check() for check in checks)


def resolve_device(name: str, default: torch.device) -> torch.device:
    """`auto` -> `default` (the DistInfo device: torchrun's local GPU, cuda:0, or cpu); `cuda`
    -> `default` when that is a GPU; else the named device, checked to exist."""
    if name == "auto" or (name == "cuda" and default.type == "cuda"):
        return default  # under torchrun, "cuda" means this rank's local GPU
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} requested but CUDA is not available; use --device cpu")
    return device


def resolve_precision(name: str, device: torch.device) -> Precision:
    """Map a --precision value (auto/fp32/bf16/fp16) to what runs on `device`."""
    kind = device.type
    if name == "auto":
        if kind == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif kind == "cpu":
            name = "bf16" if cpu_supports_bf16() else "fp32"
        else:
            name = "fp32"
    if name == "fp32":
        return Precision("fp32", None, kind)
    if name == "bf16":
        return Precision("bf16", torch.bfloat16, kind)
    if name == "fp16":
        if kind != "cuda":
            raise UserError("--precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        return Precision("fp16", torch.float16, kind)
    raise UserError(f"--precision must be auto, fp32, bf16 or fp16, got {name!r}")


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """`t` in float32, or float64 when it already is (losses of autocast outputs; a float64
    model, as in the DDP equivalence test, keeps float64 all the way)."""
    return t if t.dtype == torch.float64 else t.float()
