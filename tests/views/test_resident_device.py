"""A resident dataset kept in an accelerator's memory (`ImageDataset.to`, data.resident_on_device).

No GPU here: the "meta" device stands in for one (tensors with shapes and devices, no values),
which is enough to check what moves where: build_batches moves the uint8 images (not the
targets) to a non-CPU training device only when asked, and TwoViewBatches / EvalBatches then cut
batches on that device without the host path's pin_memory (which a device tensor refuses). The
values on a real GPU are compared with the CPU in tests/cuda/test_cuda_views.py.
"""

from __future__ import annotations

import pytest
import torch
from view_fakes import memory_dataset

from dimcollapse import build
from dimcollapse.config import apply_overrides, preset_config, resolve
from dimcollapse.views import EvalBatches, TwoViewBatches, build_views

META = torch.device("meta")


def _cfg(**over):
    base = {"data.data_dir": ".", "loop.batch_size": 8, "data.image_size": 16}
    return resolve(apply_overrides(preset_config("cifar"), {**base, **over}))


def test_to_moves_images_only_and_keeps_rows():
    ds = memory_dataset(12, 20, 20)
    moved = ds.to(META)
    assert moved.images.device == META and moved.images.shape == ds.images.shape
    assert moved.images.dtype == torch.uint8
    assert moved.targets.device.type == "cpu" and torch.equal(moved.targets, ds.targets)
    assert torch.equal(moved.source_indices, ds.source_indices)
    assert ds.to("cpu") is ds  # nothing to move
    sub = moved.subset(torch.tensor([3, 1]))
    assert sub.images.device == META and sub.targets.tolist() == ds.targets[[3, 1]].tolist()


@pytest.mark.parametrize("on_device, expected", [(True, "meta"), (False, "cpu")])
def test_build_batches_places_the_images_on_the_training_device(on_device, expected):
    ds = memory_dataset(16, 20, 20)
    cfg = _cfg(**{"data.resident_on_device": on_device})
    batches = build.build_batches(cfg, ds, rank=0, world_size=1, device=META, start_step=0)
    assert batches.dataset.images.device.type == expected
    assert ds.images.device.type == "cpu"  # the caller's dataset is not modified


def test_build_batches_on_cpu_keeps_the_same_dataset():
    ds = memory_dataset(16, 20, 20)
    batches = build.build_batches(_cfg(), ds, rank=0, world_size=1,
                                  device=torch.device("cpu"), start_step=0)
    assert batches.dataset is ds


def test_batches_of_a_device_resident_dataset_are_cut_on_that_device():
    ds = memory_dataset(16, 20, 20).to(META)
    views = build_views("cifar", 16)
    b = TwoViewBatches(ds, views, batch_size=8, seed=0, device=META).batch(1)
    assert b.view1.device == META and b.view1.shape == (8, 3, 16, 16)
    assert b.view1.dtype == torch.float32 and b.target.device == META
    assert b.index.device.type == "cpu" and len(b.index) == 8
    (idx, x, y), = list(EvalBatches(ds, batch_size=16, image_size=20, device=META))
    assert x.device == META and x.shape == (16, 3, 20, 20) and len(idx) == 16
