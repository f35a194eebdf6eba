"""Feature extraction and the linear probe on the GPU equal their CPU results.

Features: the frozen cifar-stem ResNet-18 in eval mode, fp32 without TF32: 1e-4 of each row's
norm. Probe: the L-BFGS logistic regression in float64 on CUDA tensors against the same fit on
CPU tensors: the same test predictions (top-1, top-5 exactly) and the objective to 1e-6.
"""

import copy

import pytest
import torch
from view_fakes import memory_dataset

from dimcollapse.eval import linear_probe
from dimcollapse.eval.features import extract_features
from dimcollapse.models import build_backbone


def test_features_on_cuda_equal_features_on_cpu(accel):
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", stem="cifar")
    # Non-trivial running statistics, so eval-mode BatchNorm is not the identity.
    backbone.train()
    with torch.no_grad():
        backbone(torch.randn(64, 3, 32, 32))
    ds = memory_dataset(40, 32, 32)
    cpu = extract_features(copy.deepcopy(backbone), ds, image_size=32, batch_size=16,
                           device="cpu")
    gpu = extract_features(copy.deepcopy(backbone), ds.to(accel), image_size=32, batch_size=16,
                           device=accel)
    assert gpu["r"].shape == cpu["r"].shape == (40, 512)
    assert gpu["r"].dtype == torch.float32 and torch.equal(gpu["targets"].cpu(), cpu["targets"])
    err = (gpu["r"].cpu() - cpu["r"]).norm(dim=1) / cpu["r"].norm(dim=1)
    assert float(err.max()) <= 1e-4
    assert float(cpu["r"].std(dim=0).mean()) > 1e-3  # the rows differ: not a constant output


def test_probe_on_cuda_features_equals_cpu_probe(accel):
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(5, 32, generator=g, dtype=torch.float64) * 0.25
    ytr, yte = torch.arange(600) % 5, torch.arange(200) % 5
    xtr = centres[ytr] + torch.randn(600, 32, generator=g, dtype=torch.float64)
    xte = centres[yte] + torch.randn(200, 32, generator=g, dtype=torch.float64)
    cpu = linear_probe(xtr, ytr, xte, yte, dtype=torch.float64, device="cpu")
    gpu = linear_probe(xtr.to(accel), ytr.to(accel), xte.to(accel), yte.to(accel),
                       dtype=torch.float64, device=accel)
    assert gpu.converged and cpu.converged
    assert 40.0 < cpu.top1 < 100.0  # a fit that neither fails nor is trivial
    assert gpu.top1 == cpu.top1 and gpu.top5 == cpu.top5
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-6)
    assert gpu.weight.device.type == accel.type
