"""Feature extraction against a slow per-image reference, and the feature cache: reuse,
invalidation when the checkpoint / data / settings change, damaged files, atomic writes."""

from __future__ import annotations

import pytest
import torch
from evalfakes import make_labelled_tree, reference_features, train_tiny

from dimcollapse.data import build_dataset
from dimcollapse.devices import resolve_precision
from dimcollapse.eval import features as F
from dimcollapse.eval import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained mlp run on a 4-class, 16 px labelled tree (data, run folder, cache)."""
    base = tmp_path_factory.mktemp("feat")
    data = make_labelled_tree(base / "data")
    torch.set_num_threads(1)
    run = train_tiny(base / "run", data, base / "cache")
    return data, run, base / "cache"


def _ds(data, cache, split="test"):
    return build_dataset("cifar10", data, split, cache_dir=cache, progress=False)


def test_extraction_equals_the_per_image_reference(run):
    data, rundir, cache = run
    ckpt = load_checkpoint(rundir / "checkpoint_final.pt")
    feats = F.cached_features(ckpt, _ds(data, cache), image_size=16, spaces=("r", "z"),
                              cache_dir=None, batch_size=7)  # fp32, batches of 7 (ragged end)
    r_ref, z_ref, y_ref = reference_features(rundir / "checkpoint_final.pt", data, "test",
                                             projector=True)
    assert feats.r.dtype == torch.float32 and feats.r.shape == (24, 512)
    assert torch.equal(feats.targets, y_ref)
    torch.testing.assert_close(feats.r, r_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(feats.z, z_ref, rtol=1e-4, atol=1e-5)
    assert not feats.cache_hit and feats.path is None


def test_bf16_features_are_stored_float32_and_close(run):
    data, rundir, cache = run
    ckpt = load_checkpoint(rundir / "checkpoint_final.pt")
    bf16 = resolve_precision("bf16", torch.device("cpu"))
    got = F.cached_features(ckpt, _ds(data, cache), image_size=16, cache_dir=None,
                            precision=bf16)
    ref = F.cached_features(ckpt, _ds(data, cache), image_size=16, cache_dir=None)
    assert got.r.dtype == torch.float32
    assert not torch.equal(got.r, ref.r)  # really computed under autocast
    rel = (got.r - ref.r).norm() / ref.r.norm()
    assert rel < 0.05


def test_cache_is_reused_and_invalidated(run, tmp_path, monkeypatch):
    data, rundir, cache = run
    calls = []
    real = F.extract_features
    monkeypatch.setattr(F, "extract_features",
                        lambda *a, **k: calls.append(k.get("image_size")) or real(*a, **k))
    ckpt_path = tmp_path / "ck.pt"
    ckpt_path.write_bytes((rundir / "checkpoint_final.pt").read_bytes())
    ds = _ds(data, cache)
    cdir = tmp_path / "features"

    def get(**kw):
        return F.cached_features(load_checkpoint(ckpt_path), ds, cache_dir=cdir,
                                 **{"image_size": 16, **kw})

    first = get()
    assert not first.cache_hit and first.path.is_file() and len(calls) == 1
    again = get()
    assert again.cache_hit and len(calls) == 1 and torch.equal(again.r, first.r)
    assert [p.name for p in cdir.iterdir() if p.name.startswith(".")] == []  # no temp files
    # r alone is served by a file holding (r, z); asking for z needs that file
    both = get(spaces=("r", "z"))
    assert not both.cache_hit and len(calls) == 2
    assert torch.equal(both.r, first.r)
    # other settings are other keys
    get(image_size=12)
    get(batch_size=5)
    assert len(calls) == 4
    # a changed checkpoint (same path and size, different bytes) is never served from the cache
    ck = torch.load(ckpt_path, weights_only=True)
    ck["backbone"]["layer4.1.bn2.weight"].add_(1.0)
    torch.save(ck, ckpt_path)
    changed = get()
    assert not changed.cache_hit and len(calls) == 5
    assert not torch.equal(changed.r, first.r)
    # a damaged cache file is recomputed, not trusted
    changed.path.write_bytes(b"not a torch file")
    redo = get()
    assert not redo.cache_hit and len(calls) == 6 and torch.equal(redo.r, changed.r)


def test_a_different_dataset_is_a_different_key(run, tmp_path):
    data, rundir, cache = run
    ckpt = load_checkpoint(rundir / "checkpoint_final.pt")
    k1 = F.feature_key(ckpt, _ds(data, cache, "test"), image_size=16, spaces=("r",),
                       precision_name="fp32", batch_size=512)
    k2 = F.feature_key(ckpt, _ds(data, cache, "train"), image_size=16, spaces=("r",),
                       precision_name="fp32", batch_size=512)
    other = make_labelled_tree(tmp_path / "other", seed=5)
    k3 = F.feature_key(ckpt, _ds(other, cache, "test"), image_size=16, spaces=("r",),
                       precision_name="fp32", batch_size=512)
    paths = {F.cache_path(tmp_path, k).name for k in (k1, k2, k3)}
    assert len(paths) == 3
    assert k1["data"]["content"] != k3["data"]["content"]


def test_embedding_space_needs_our_projector(run, tmp_path):
    from evalfakes import official_files

    from dimcollapse.errors import UserError

    data, rundir, cache = run
    files = official_files(rundir / "checkpoint_final.pt", tmp_path)
    ckpt = load_checkpoint(files["final"])
    with pytest.raises(UserError, match="only dimcollapse checkpoints record their projector"):
        F.cached_features(ckpt, _ds(data, cache), image_size=16, spaces=("r", "z"),
                          cache_dir=None)
