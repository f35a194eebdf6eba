"""TwoViewBatches / EvalBatches: epochs, ranks, resume, streaming workers, evaluation order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from view_fakes import from_pil, memory_dataset

from dimcollapse.data import build_dataset
from dimcollapse.errors import UserError
from dimcollapse.views import EvalBatches, TwoViewBatches, build_views


def _take(it, n):
    return list(itertools.islice(iter(it), n))


def test_epochs_cover_the_dataset_without_repeats():
    ds = memory_dataset(n=23)
    tv = TwoViewBatches(ds, build_views("cifar", 16), batch_size=5, seed=4)
    assert tv.steps_per_epoch == 4  # drop_last: 3 images sit out each epoch
    for epoch in (0, 1):
        seen = torch.cat([tv.global_indices(epoch * 4 + k) for k in range(4)])
        assert len(set(seen.tolist())) == 20
    assert not torch.equal(tv.global_indices(0), tv.global_indices(4))
    other_seed = TwoViewBatches(ds, build_views("cifar", 16), batch_size=5, seed=5)
    assert not torch.equal(tv.global_indices(0), other_seed.global_indices(0))
    b = tv.batch(6)
    assert b.epoch == 1 and torch.equal(b.index, tv.global_indices(6))
    assert torch.equal(b.target, ds.targets[b.index]) and b.view1.shape == (5, 3, 16, 16)


@pytest.mark.parametrize("preset", ["cifar", "imagenet"])
def test_ranks_split_the_global_batch_bit_for_bit(preset):
    ds = memory_dataset(n=40, h=36, w=36)
    views = build_views(preset, 32)
    one = TwoViewBatches(ds, views, batch_size=8, seed=2)
    ranks = [TwoViewBatches(ds, views, batch_size=8, seed=2, rank=r, world_size=2)
             for r in (0, 1)]
    for step in (0, 3, 7):
        whole = one.batch(step)
        parts = [r.batch(step) for r in ranks]
        assert torch.equal(whole.index, torch.cat([p.index for p in parts]))
        assert torch.equal(whole.view1, torch.cat([p.view1 for p in parts]))
        assert torch.equal(whole.view2, torch.cat([p.view2 for p in parts]))


def test_resume_from_start_step_is_exact():
    ds = memory_dataset(n=30)
    views = build_views("cifar", 32)
    full = _take(TwoViewBatches(ds, views, batch_size=6, seed=1), 9)
    resumed = _take(TwoViewBatches(ds, views, batch_size=6, seed=1, start_step=6), 3)
    assert [b.step for b in resumed] == [6, 7, 8]
    for a, b in zip(full[6:], resumed, strict=True):
        assert torch.equal(a.index, b.index) and torch.equal(a.view1, b.view1)
        assert torch.equal(a.view2, b.view2)


def test_batch_errors():
    ds = memory_dataset(n=10)
    views = build_views("cifar", 32)
    with pytest.raises(UserError, match="multiple of the 4 processes"):
        TwoViewBatches(ds, views, batch_size=6, seed=0, world_size=4)
    with pytest.raises(UserError, match="fewer than one batch of 16"):
        TwoViewBatches(ds, views, batch_size=16, seed=0)
    with pytest.raises(UserError, match="batch size must be positive"):
        EvalBatches(ds, batch_size=0, image_size=32)


def test_streaming_workers_match_in_process_and_torchvision_pil_crops(tree_mixed):
    ds = build_dataset("imagefolder", tree_mixed, "train")
    views = build_views("imagenet", 24)
    kw = dict(batch_size=4, seed=3, start_step=1)
    inproc = _take(TwoViewBatches(ds, views, num_workers=0, **kw), 3)
    workers = _take(TwoViewBatches(ds, views, num_workers=2, **kw), 3)
    for a, b in zip(inproc, workers, strict=True):
        assert a.step == b.step and torch.equal(a.index, b.index)
        assert torch.equal(a.view1, b.view1) and torch.equal(a.view2, b.view2)
    # The crops are torchvision's PIL crops of boxes drawn for each image's own size.
    batch = inproc[0]
    crops = []
    for i in batch.index.tolist():
        img = Image.open(ds.files[i]).convert("RGB")
        p = views.params(1, seed=3, step=1, index=torch.tensor([i]), height=img.height,
                         width=img.width)
        crops.append(from_pil(TF.resized_crop(img, *p.boxes[0].tolist(), [24, 24],
                                              InterpolationMode.BICUBIC)))
    expect = views.from_crops(torch.stack(crops), batch.index, seed=3, step=1, view=1,
                              mean=ds.mean, std=ds.std)
    assert torch.equal(batch.view2, expect)


def test_streaming_and_resident_views_agree_up_to_uint8_rounding(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(8):
        (tmp_path / "t" / "train" / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((32, 32), Image.BILINEAR).save(
            tmp_path / "t" / "train" / f"c{k % 2}" / f"{k}.png")
    stream = build_dataset("imagefolder", tmp_path / "t", "train")
    res = build_dataset("imagefolder", tmp_path / "t", "train", resident=True,
                        cache_dir=tmp_path / "cache")
    views = build_views("cifar", 32)
    a = _take(TwoViewBatches(stream, views, batch_size=8, seed=0), 1)[0]
    b = TwoViewBatches(res, views, batch_size=8, seed=0).batch(0)
    diff = (a.view1 - b.view1).abs() * torch.tensor(res.std).view(1, 3, 1, 1) * 255
    # In levels: the streaming crop is rounded to uint8 by PIL (<= 0.5 level), which colour
    # jitter can amplify (brightness, contrast, saturation factors up to 1.4 each).
    assert diff.mean() < 0.5 and diff.max() < 5


def test_eval_batches_resident_native_size_in_order():
    ds = memory_dataset(n=10)
    batches = list(EvalBatches(ds, batch_size=4, image_size=32))
    assert len(batches) == 3 and [len(b.index) for b in batches] == [4, 4, 2]
    index, images, target = batches[1]  # unpacks as (index, images, target)
    assert index.tolist() == [4, 5, 6, 7] and torch.equal(target, ds.targets[4:8])
    expect = TF.normalize(ds.images[4:8].float() / 255, ds.mean, ds.std)
    assert (images - expect).abs().max() < 1e-6
    shards = [EvalBatches(ds, batch_size=4, image_size=32, rank=r, world_size=3)
              for r in range(3)]
    rows = torch.cat([b.index for s in shards for b in s])
    assert rows.tolist() == list(range(10))


def test_eval_batches_resident_resize_matches_torchvision():
    ds = memory_dataset(n=6, h=20, w=28)
    images = next(iter(EvalBatches(ds, batch_size=6, image_size=16))).images
    ref = T.Compose([T.Resize(16, antialias=True), T.CenterCrop(16),
                     T.Normalize(ds.mean, ds.std)])
    expect = torch.stack([ref(ds.images[k].float() / 255) for k in range(6)])
    assert (images - expect).abs().max() < 1e-4


def test_eval_batches_streaming_equal_torchvision_pil_pipeline(tree_mixed):
    ds = build_dataset("imagefolder", tree_mixed, "train")
    ref = T.Compose([T.Resize(round(24 / 0.875)), T.CenterCrop(24), T.ToTensor(),
                     T.Normalize(ds.mean, ds.std)])
    for workers in (0, 2):
        got = torch.cat([b.images for b in EvalBatches(ds, batch_size=3, image_size=24,
                                                       num_workers=workers)])
        expect = torch.stack([ref(ds[i][0]) for i in range(len(ds))])
        assert (got - expect).abs().max() < 1e-5


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_file_in_a_streaming_worker_is_a_one_line_error(tree_mixed, workers):
    bad = tree_mixed / "train" / "c1" / "3.png"
    bad.write_bytes(b"this is not a png")
    ds = build_dataset("imagefolder", tree_mixed, "train")
    batches = TwoViewBatches(ds, build_views("cifar", 16), batch_size=10, seed=0,
                             num_workers=workers)
    with pytest.raises(UserError) as err:
        next(iter(batches))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("cannot decode image") and "c1/3.png" in msg
    with pytest.raises(UserError, match=r"^cannot decode image .*c1/3\.png"):
        list(EvalBatches(ds, batch_size=5, image_size=16, num_workers=workers))
