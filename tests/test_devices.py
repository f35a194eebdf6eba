"""Device and precision resolution."""

import pytest
import torch

from dimcollapse.devices import cpu_supports_bf16, resolve_device, resolve_precision
from dimcollapse.errors import UserError

CPU = torch.device("cpu")


def test_auto_on_cpu_is_bf16_exactly_when_the_cpu_has_it():
    p = resolve_precision("auto", CPU)
    assert p.name == ("bf16" if cpu_supports_bf16() else "fp32")
    assert not p.needs_scaler


def test_explicit_choices():
    assert resolve_precision("fp32", CPU).dtype is None
    bf16 = resolve_precision("bf16", CPU)
    with bf16.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)
    with pytest.raises(UserError, match="--precision"):
        resolve_precision("fp8", CPU)


def test_devices():
    assert resolve_device("auto", CPU) == CPU
    assert resolve_device("cpu", CPU) == CPU
    with pytest.raises(UserError, match="not a device"):
        resolve_device("gpu0", CPU)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda", CPU)
