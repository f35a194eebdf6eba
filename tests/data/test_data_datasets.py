"""Datasets: formats, cache reuse/invalidation, decoding, subsets, downloads, error messages."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
from data_fakes import write_cifar_pickles, write_stl10, write_tree
from PIL import Image

from dimcollapse.data import DATASETS, build_dataset, default_cache_dir
from dimcollapse.data import resident as resident_mod
from dimcollapse.errors import UserError


def _expected(files: dict[str, np.ndarray]):
    rels = sorted(files)  # ImageFolder order: classes sorted, files sorted
    classes = sorted({r.split("/")[0] for r in rels})
    imgs = np.stack([files[r].transpose(2, 0, 1) for r in rels])
    return imgs, [classes.index(r.split("/")[0]) for r in rels], classes


def test_registry_names():
    assert set(DATASETS) == {"cifar10", "cifar100", "stl10", "imagefolder"}


def test_cifar_imagefolder_tree_is_decoded_resident(cifar_tree, tmp_path):
    root, train, _ = cifar_tree
    ds = build_dataset("cifar10", root, "train", cache_dir=tmp_path / "cache")
    imgs, targets, classes = _expected(train)
    assert ds.resident and ds.images.dtype == torch.uint8 and ds.images.shape == (12, 3, 8, 8)
    assert np.array_equal(ds.images.numpy(), imgs)
    assert ds.targets.tolist() == targets and ds.classes == classes
    img, t = ds[5]  # torchvision-style access
    assert np.array_equal(np.asarray(img), imgs[5].transpose(1, 2, 0)) and t == targets[5]


def test_cache_is_reused_and_never_written_into_the_data_folder(cifar_tree, tmp_path,
                                                                 monkeypatch):
    root, _, _ = cifar_tree
    before = sorted(p for p in root.rglob("*"))
    cache = tmp_path / "cache"
    first = build_dataset("cifar10", root, "train", cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1
    assert sorted(p for p in root.rglob("*")) == before

    def no_decode(*a, **k):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(resident_mod, "decode_folder", no_decode)
    again = build_dataset("cifar10", root, "train", cache_dir=cache)
    assert torch.equal(first.images, again.images) and torch.equal(first.targets, again.targets)


def test_cache_invalidated_when_a_file_changes_or_is_added(cifar_tree, tmp_path):
    root, _, _ = cifar_tree
    cache = tmp_path / "cache"
    build_dataset("cifar10", root, "train", cache_dir=cache)
    old = list(cache.glob("*.npz"))
    # Replace one image's pixels (new size/mtime): the cache must not serve the old pixels.
    new_px = np.full((8, 8, 3), 7, dtype=np.uint8)
    target = root / "train" / "dog" / "001.png"
    Image.fromarray(new_px).save(target)
    os.utime(target, ns=(1, 1))
    ds = build_dataset("cifar10", root, "train", cache_dir=cache)
    row = sorted(p.relative_to(root / "train").as_posix() for p in (root / "train").rglob("*.png"))
    assert np.array_equal(ds.images[row.index("dog/001.png")].numpy(), new_px.transpose(2, 0, 1))
    now = list(cache.glob("*.npz"))
    assert len(now) == 1 and now != old  # the stale file was removed
    write_tree(root / "train", {"zebra": 1}, seed=9)
    ds = build_dataset("cifar10", root, "train", cache_dir=cache)
    assert len(ds) == 13 and ds.classes[-1] == "zebra"


def test_default_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("DIMCOLLAPSE_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("DIMCOLLAPSE_CACHE")
    assert default_cache_dir() == tmp_path / "x" / "dimcollapse"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dimcollapse"


def test_unwritable_cache_warns_and_still_loads(cifar_tree, tmp_path, capsys):
    root, train, _ = cifar_tree
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    ds = build_dataset("cifar10", root, "test", cache_dir=blocker / "cache")
    assert len(ds) == 6
    assert "could not write the image cache" in capsys.readouterr().err


def test_multiprocess_decode_equals_single_process(tmp_path, monkeypatch):
    root = tmp_path / "c"
    files = write_tree(root / "train", {"a": 7, "b": 6}, size=(5, 6), ext=".jpg", seed=3)
    monkeypatch.setattr(resident_mod, "CHUNK_FILES", 3)  # 5 chunks -> a real pool
    pooled = build_dataset("cifar10", root, "train", cache_dir=tmp_path / "c1", decode_workers=2)
    single = build_dataset("cifar10", root, "train", cache_dir=tmp_path / "c2", decode_workers=1)
    assert torch.equal(pooled.images, single.images)
    assert np.array_equal(pooled.images.numpy(), _expected(files)[0])


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("garbage", [b"not an image at all", "truncated"])
def test_corrupt_image_error_names_the_file(tmp_path, monkeypatch, workers, garbage):
    root = tmp_path / "c"
    write_tree(root / "train", {"a": 4, "b": 4}, ext=".jpg")
    bad = root / "train" / "b" / "002.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if garbage == "truncated" else garbage)
    monkeypatch.setattr(resident_mod, "CHUNK_FILES", 2)
    with pytest.raises(UserError, match=r"cannot decode image .*b/002\.jpg"):
        build_dataset("cifar10", root, "train", cache_dir=tmp_path / "cache",
                      decode_workers=workers)
    stream = build_dataset("imagefolder", root, "train")
    with pytest.raises(UserError, match=r"b/002\.jpg"):
        stream.load_image(6)


def test_mixed_sizes_rejected_for_a_resident_tree(tmp_path):
    root = tmp_path / "c"
    write_tree(root / "train", {"a": 3}, sizes=[(8, 8), (8, 9)])
    with pytest.raises(UserError, match=r"001\.png is 9x8 but the others are 8x8"):
        build_dataset("cifar10", root, "train", cache_dir=tmp_path / "cache")


def test_cifar_pickles(tmp_path):
    base, written = write_cifar_pickles(tmp_path / "tv")
    train = build_dataset("cifar10", tmp_path / "tv", "train")
    data = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert np.array_equal(train.images.numpy(), data.reshape(-1, 3, 32, 32))
    assert train.targets.tolist() == sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert train.classes[:2] == ["class0", "class1"]
    test = build_dataset("cifar10", base, "test")  # the batches folder itself works too
    assert np.array_equal(test.images.numpy(), written["test_batch"][0].reshape(-1, 3, 32, 32))


def test_cifar100_pickles(tmp_path):
    _, written = write_cifar_pickles(tmp_path / "tv", "cifar100")
    ds = build_dataset("cifar100", tmp_path / "tv", "test")
    assert ds.targets.tolist() == written["test"][1] and len(ds.classes) == 100


def test_corrupt_cifar_pickle_names_the_file(tmp_path):
    base, _ = write_cifar_pickles(tmp_path / "tv")
    (base / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(UserError, match=r"data_batch_3"):
        build_dataset("cifar10", tmp_path / "tv", "train")


def test_stl10_binaries_and_splits(tmp_path):
    _, parts = write_stl10(tmp_path / "stl")
    train = build_dataset("stl10", tmp_path / "stl", "train")
    assert np.array_equal(train.images.numpy(), parts["train"][0])  # column-major undone
    assert train.targets.tolist() == parts["train"][1].tolist()
    both = build_dataset("stl10", tmp_path / "stl", "train+unlabeled")
    assert len(both) == 7 and both.targets[3:].tolist() == [-1] * 4
    assert np.array_equal(both.images[3:].numpy(), parts["unlabeled"][0])
    with pytest.raises(UserError, match="unknown stl10 split 'val'"):
        build_dataset("stl10", tmp_path / "stl", "val")


def test_imagefolder_streams_mixed_sizes(tmp_path):
    files = write_tree(tmp_path / "in" / "val", {"n01": 2, "n02": 3}, sizes=[(10, 14), (9, 7)])
    ds = build_dataset("imagefolder", tmp_path / "in", "val")
    assert not ds.resident and ds.images is None and len(ds) == 5
    img, t = ds[4]
    assert np.array_equal(np.asarray(img), files["n02/002.png"]) and t == 1


def test_download_uses_torchvision_downloader_without_network(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10
    from torchvision.datasets import utils as tv_utils

    def no_network(*a, **k):
        raise AssertionError("a test touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    calls = []

    def fake_download(url, download_root, extract_root=None, filename=None, md5=None, **k):
        calls.append((url, filename, md5))
        write_cifar_pickles(tmp_path / "new")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake_download)
    with pytest.raises(UserError, match="pass --download"):
        build_dataset("cifar10", tmp_path / "new", "train")
    ds = build_dataset("cifar10", tmp_path / "new", "train", download=True)
    assert len(ds) == 20 and calls == [(CIFAR10.url, CIFAR10.filename, CIFAR10.tgz_md5)]
    build_dataset("cifar10", tmp_path / "new", "train", download=True)  # present: no refetch
    assert len(calls) == 1

    def failing(*a, **k):
        raise OSError("name resolution failed")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", failing)
    with pytest.raises(UserError, match="downloading stl10 into .* failed"):
        build_dataset("stl10", tmp_path / "s", "train", download=True)


def test_subset_is_deterministic_balanced_and_nested(cifar_tree, tmp_path):
    root, _, _ = cifar_tree
    full = build_dataset("cifar10", root, "train", cache_dir=tmp_path / "cache")
    a = build_dataset("cifar10", root, "train", subset=6, cache_dir=tmp_path / "cache")
    b = build_dataset("cifar10", root, "train", subset=6, cache_dir=tmp_path / "cache")
    assert torch.equal(a.source_indices, b.source_indices) and len(a) == 6
    assert torch.bincount(a.targets).tolist() == [2, 2, 2]
    assert torch.equal(a.images, full.images[a.source_indices])
    assert (a.source_indices.diff() > 0).all()
    seeds = {tuple(build_dataset("cifar10", root, "train", subset=6, subset_seed=s,
                                 cache_dir=tmp_path / "cache").source_indices.tolist())
             for s in range(5)}
    assert len(seeds) > 1  # the seed matters
    small = build_dataset("cifar10", root, "train", subset=3, cache_dir=tmp_path / "cache")
    assert set(small.source_indices.tolist()) <= set(a.source_indices.tolist())
    with pytest.raises(UserError, match="subset size 13 is out of range"):
        build_dataset("cifar10", root, "train", subset=13, cache_dir=tmp_path / "cache")


def test_subset_counts_on_unbalanced_labels():
    from dimcollapse.data import balanced_subset

    targets = torch.tensor([0] * 50 + [1] * 5 + [2] * 20 + [-1] * 25)
    idx = balanced_subset(targets, 40, seed=1)
    counts = {c: int((targets[idx] == c).sum()) for c in (-1, 0, 1, 2)}
    assert counts[1] == 5  # a small class is taken whole, the rest share evenly
    assert sorted(counts[c] for c in (-1, 0, 2)) == [11, 12, 12]
    assert sum(counts.values()) == 40


@pytest.mark.parametrize("call, message", [
    (lambda p: build_dataset("mnist", p, "train"), "unknown dataset 'mnist'; choose one of"),
    (lambda p: build_dataset("imagefolder", p / "nope", "train"),
     "data folder .*nope does not exist"),
    (lambda p: build_dataset("cifar10", p / "nope", "train"), "pass --download"),
    (lambda p: build_dataset("imagefolder", p, "train"), r"no 'train' split folder in .*"),
    (lambda p: build_dataset("cifar10", p, "valid"), "unknown cifar10 split 'valid'"),
    (lambda p: build_dataset("imagefolder", p, "train", download=True), "cannot be downloaded"),
])
def test_error_messages(tmp_path, call, message):
    with pytest.raises(UserError, match=message):
        call(tmp_path)


def test_empty_and_classless_folders(tmp_path):
    (tmp_path / "e" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="no class folders in"):
        build_dataset("imagefolder", tmp_path / "e", "train")
    (tmp_path / "e" / "train" / "cls").mkdir()
    (tmp_path / "e" / "train" / "cls" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="no images in"):
        build_dataset("imagefolder", tmp_path / "e", "train")
    (tmp_path / "f" / "train").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "f" / "train" / "loose.png")
    with pytest.raises(UserError, match="no class folders"):
        build_dataset("cifar10", tmp_path / "f", "train", cache_dir=tmp_path / "cache")
