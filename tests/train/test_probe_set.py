"""The spectrum hook's fixed probe set: it changes no weight, it is the same images for every
run, its numbers are `measure`'s of the frozen model's r and z, and it is off by default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from trainhelpers import make_tree, tiny_overrides

from dimcollapse import build
from dimcollapse.config import apply_overrides, default_config, preset_config, resolve
from dimcollapse.data import build_dataset
from dimcollapse.errors import UserError
from dimcollapse.spectrum.measure import measure
from dimcollapse.train import run_training
from dimcollapse.train.checkpoint import load_checkpoint
from dimcollapse.train.probe_set import PROBE_SEED, ProbeSet, build_probe_set

PROBE = 12  # of the 24 test images (4 classes x 6)
PROBE_KEYS = ("probe_rankme_r", "probe_collapsed_dims_r", "probe_rankme_z",
              "probe_collapsed_dims_z", "probe_images")
TIMING = ("time_s", "images_per_s")


def make_data(root: Path) -> Path:
    """train/ (4 x 12 images) and test/ (4 x 6 images, other pixels) under root."""
    make_tree(root)
    other = make_tree(root.parent / "held-out-tmp", per_class=6, seed=1)
    shutil.move(str(other / "train"), str(root / "test"))
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("probe")
    data = make_data(base / "data")
    out = {}
    for name, probe in (("off", 0), ("on", PROBE)):
        over = tiny_overrides(data, base / "cache", **{"loop.spectrum_probe_images": probe})
        run_training(base / name, overrides=over, quiet=True)
        out[name] = base / name
    out["data"], out["cache"] = data, base / "cache"
    return out


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in open(run / "metrics.jsonl")]


def _cfg(runs, **extra):
    over = tiny_overrides(runs["data"], runs["cache"],
                          **{"loop.spectrum_probe_images": PROBE, **extra})
    return resolve(apply_overrides(default_config(), over))


def test_probe_set_changes_no_weight_and_no_existing_record(runs):
    off, on = (load_checkpoint(runs[k] / "checkpoint_final.pt") for k in ("off", "on"))
    for part in ("backbone", "projector", "classifier"):  # BatchNorm running stats included
        for k in off[part]:
            assert torch.equal(off[part][k], on[part][k]), f"{part}.{k} differs"
    for i, state in off["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], on["optimizer"]["state"][i]["momentum_buffer"])
    r_off, r_on = _records(runs["off"]), _records(runs["on"])
    assert not any(k in r for r in r_off for k in PROBE_KEYS)  # off: the old records
    assert r_on[0] == {"step": 0, "epoch": 0.0, **{k: r_on[0][k] for k in PROBE_KEYS}}
    r_on = r_on[1:]
    assert [{k: v for k, v in r.items() if k not in TIMING + PROBE_KEYS} for r in r_on] == \
        [{k: v for k, v in r.items() if k not in TIMING} for r in r_off]
    probed = [r["step"] for r in r_on if "probe_rankme_r" in r]
    assert probed == [r["step"] for r in r_off if "rankme_r" in r] == [3, 6]
    assert all(r["probe_images"] == PROBE for r in r_on if "probe_images" in r)


def test_probe_numbers_are_measure_of_the_frozen_model(runs):
    cfg = _cfg(runs)
    ckpt = load_checkpoint(runs["on"] / "checkpoint_final.pt")
    encoder = build.build_encoder(cfg)
    encoder.backbone.load_state_dict(ckpt["backbone"])
    encoder.projector.load_state_dict(ckpt["projector"])
    train = build.build_train_dataset(cfg, progress=False)
    probe = build_probe_set(cfg, train, device=torch.device("cpu"), rank=0, world_size=1)
    encoder.train()
    got = probe.measure(encoder)
    assert encoder.training  # mode restored
    assert all(torch.equal(a, b) for a, b in zip(encoder.backbone.state_dict().values(),
                                                  ckpt["backbone"].values(), strict=True))
    assert probe.measure(encoder) == got  # same checkpoint, same numbers
    # slow reference: the same images by hand, eval mode, then `measure`
    test = build_dataset("cifar10", str(runs["data"]), "test", cache_dir=runs["cache"],
                         progress=False)
    from dimcollapse.data.subset import balanced_subset

    rows = balanced_subset(test.targets, PROBE, PROBE_SEED)
    x = test.images[rows].float().div(255)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (train.mean, train.std))
    x = torch.nn.functional.interpolate(x, size=16) if x.shape[-1] != 16 else x
    encoder.eval()
    with torch.no_grad():
        r, z = encoder((x - mean) / std)
    for key, t in (("r", r), ("z", z)):
        ref = measure(t.double())
        assert got[f"probe_rankme_{key}"] == pytest.approx(ref.rankme, rel=1e-6)
        assert got[f"probe_collapsed_dims_{key}"] == ref.collapsed_dims
    # the run's last record measured the same model on the same images
    last = _records(runs["on"])[-1]
    for k in PROBE_KEYS:
        assert last[k] == pytest.approx(got[k], rel=1e-5)


def test_probe_images_do_not_depend_on_the_run_seed(runs):
    sets = []
    for seed in (0, 7):
        cfg = _cfg(runs, seed=seed, **{"data.train_subset": 40})
        train = build.build_train_dataset(cfg, progress=False)
        sets.append(build_probe_set(cfg, train, device=torch.device("cpu"), rank=0,
                                    world_size=1))
    assert torch.equal(sets[0].images, sets[1].images)
    test = build_dataset("cifar10", str(runs["data"]), "test", cache_dir=runs["cache"],
                         progress=False)
    from dimcollapse.data.subset import balanced_subset

    counts = torch.bincount(test.targets[balanced_subset(test.targets, PROBE, PROBE_SEED)])
    assert counts.tolist() == [3, 3, 3, 3]  # class-balanced


def test_shards_cover_the_set_and_a_small_split_is_used_whole(runs):
    cfg = _cfg(runs)
    train = build.build_train_dataset(cfg, progress=False)
    whole = build_probe_set(cfg, train, device=torch.device("cpu"), rank=0, world_size=1)
    parts = [build_probe_set(cfg, train, device=torch.device("cpu"), rank=k, world_size=2)
             for k in (0, 1)]
    assert torch.equal(torch.cat([p.images for p in parts]), whole.images)
    test = build_dataset("cifar10", str(runs["data"]), "test", cache_dir=runs["cache"],
                         progress=False)
    whole_split = ProbeSet.from_dataset(test, count=2048, image_size=16,
                                        device=torch.device("cpu"))
    assert whole_split.total == len(whole_split.images) == 24
    assert "whole held-out split, 24 images" in whole_split.note
    with pytest.raises(UserError, match="fewer than the 30 processes"):
        ProbeSet.from_dataset(test, count=24, image_size=16, device=torch.device("cpu"),
                              world_size=30)
    assert build_probe_set(_cfg(runs, **{"loop.spectrum_every_steps": 0}), train,
                           device=torch.device("cpu"), rank=0, world_size=1) is None


def test_off_by_default_on_in_the_cpu_and_cifar_presets():
    assert default_config().loop.spectrum_probe_images == 0
    assert preset_config("cpu").loop.spectrum_probe_images > 0
    assert preset_config("cifar").loop.spectrum_probe_images == 2048
