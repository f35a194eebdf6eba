"""The batched views on a CUDA tensor equal the CPU's for the same seed, and a dataset kept on
the GPU (`ImageDataset.to`, the `cifar` preset's default) gives the same batches as one copied
over per step.

CPU and CUDA run different kernels (grid_sample, bmm, the colour ops), so views agree to float32
rounding: 2e-4 absolute on normalised pixels (about 5e-5 of [0, 1]; a 1e-7 perturbation of the
input moves the CPU's views by 5e-6 at most) and 2e-6 on average. One op is discontinuous:
solarisation (imagenet view 2) inverts pixels >= 128/255, so a pixel that rounding puts on the
other side jumps by 2 (128/255 - 1/2) / std < 0.02; at most 1e-5 of the pixels may do that.
The parameters (crops, flips, jitter factors, order) are drawn on the CPU for both devices.
"""

import pytest
import torch
from view_fakes import memory_dataset, smooth_images

from dimcollapse.views import EvalBatches, TwoViewBatches, build_views

MAX_ABS = 2e-4
MEAN_ABS = 2e-6
SOLARIZE_JUMP = 0.02


@pytest.mark.parametrize("preset, size, jump", [("cifar", 32, 0.0), ("imagenet", 64,
                                                                      SOLARIZE_JUMP)])
def test_views_on_cuda_equal_views_on_cpu(accel, preset, size, jump):
    images = smooth_images(64, 48, 40, seed=3)
    index = torch.arange(100, 164)
    views = build_views(preset, size)
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    for step in (0, 7):
        cpu = views(images, index, seed=5, step=step, mean=mean, std=std)
        gpu = views(images.to(accel), index, seed=5, step=step, mean=mean, std=std)
        for c, g in zip(cpu, gpu, strict=True):
            assert g.device == accel and g.shape == c.shape == (64, 3, size, size)
            diff = (g.cpu() - c).abs()
            assert float(diff.mean()) <= MEAN_ABS
            assert float(diff.max()) <= max(MAX_ABS, jump)
            assert float((diff > MAX_ABS).double().mean()) <= (1e-5 if jump else 0.0)
    # Control: another step's views are different images.
    other = views(images, index, seed=5, step=8, mean=mean, std=std)[0]
    assert float((other - cpu[0]).abs().mean()) > 0.1


def test_dataset_resident_on_the_gpu_gives_the_same_batches(accel):
    ds = memory_dataset(48, 32, 32)
    views = build_views("cifar", 32)
    host = TwoViewBatches(ds, views, batch_size=16, seed=2, device=accel)
    moved = ds.to(accel)
    assert moved.images.device.type == accel.type
    resident = TwoViewBatches(moved, views, batch_size=16, seed=2, device=accel)
    for step in (0, 4):  # step 4 is in the second epoch (3 steps per epoch)
        a, b = host.batch(step), resident.batch(step)
        assert torch.equal(a.index, b.index) and torch.equal(a.target, b.target)
        assert torch.equal(a.view1, b.view1) and torch.equal(a.view2, b.view2)
    ev_host = list(EvalBatches(ds, batch_size=20, image_size=32, device=accel))
    ev_res = list(EvalBatches(moved, batch_size=20, image_size=32, device=accel))
    assert len(ev_host) == len(ev_res) == 3
    for (i1, x1, y1), (i2, x2, y2) in zip(ev_host, ev_res, strict=True):
        assert torch.equal(i1, i2) and torch.equal(x1, x2) and torch.equal(y1, y2)
