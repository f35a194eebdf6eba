"""Checkpoint loading: each format synthesised in tmp_path, loaded, compared to the original."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from dimcollapse.errors import UserError
from dimcollapse.eval import UnsafeLoadWarning, load_checkpoint


def _resnet(arch="resnet18", *, seed=0, stem="imagenet"):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)()
    if stem == "cifar":
        model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    for i, buf in enumerate(model.buffers()):  # BN running stats differ from their defaults
        if buf.is_floating_point():
            buf.add_(0.01 * (i + 1))
    return model


def _backbone(arch="resnet18", **kw):
    model = _resnet(arch, **kw)
    model.fc = nn.Identity()
    return model


def _assert_same(state, reference):
    assert list(state) == list(reference)
    for k, v in reference.items():
        assert torch.equal(state[k], v), k


def _loads_strictly(loaded, stem="imagenet"):
    model = _backbone(loaded.backbone, seed=123, stem=stem)
    model.load_state_dict(loaded.backbone_state, strict=True)
    return model


def test_torchvision_state_dict(tmp_path):
    model = _resnet("resnet18", seed=1)
    torch.save(model.state_dict(), tmp_path / "tv.pth")
    loaded = load_checkpoint(tmp_path / "tv.pth")
    assert (loaded.source, loaded.backbone, loaded.stem) == ("torchvision", "resnet18", "imagenet")
    assert loaded.feature_dim == 512 and loaded.weights_only and loaded.config is None
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    _assert_same(loaded.backbone_state, expected)
    _assert_same(loaded.classifier_state, {"weight": model.fc.weight, "bias": model.fc.bias})
    _loads_strictly(loaded)
    # naming the architecture agrees; naming the wrong one is refused
    assert load_checkpoint(tmp_path / "tv.pth", backbone="resnet18").backbone == "resnet18"
    with pytest.raises(UserError, match="holds a resnet18 but backbone resnet50"):
        load_checkpoint(tmp_path / "tv.pth", backbone="resnet50")


class _OfficialModel(nn.Module):
    """The module layout of the official trainer (directclr/main.py), resnet18-sized here."""

    def __init__(self, with_projector: bool):
        super().__init__()
        self.backbone = _backbone("resnet18", seed=2)
        self.online_head = nn.Linear(512, 10)
        if with_projector:
            self.projector = nn.Sequential(
                nn.Linear(512, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
                nn.Linear(512, 128, bias=False), nn.BatchNorm1d(128),
            )
        self.relu = nn.ReLU(inplace=True)


@pytest.fixture
def official_utils_module(monkeypatch):
    """A module named `utils` holding `exclude_bias_and_norm`, as the official code imports."""
    mod = types.ModuleType("utils")

    def exclude_bias_and_norm(p):
        return p.ndim == 1

    exclude_bias_and_norm.__module__ = "utils"
    exclude_bias_and_norm.__qualname__ = "exclude_bias_and_norm"
    mod.exclude_bias_and_norm = exclude_bias_and_norm
    monkeypatch.setitem(sys.modules, "utils", mod)
    return mod


def _official_checkpoint(path, utils_mod, *, with_projector):
    model = _OfficialModel(with_projector)
    params = list(model.parameters())
    # LARS stores its filter functions in the param groups; SGD keeps unknown group keys too
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    opt.param_groups[0]["weight_decay_filter"] = utils_mod.exclude_bias_and_norm
    opt.param_groups[0]["lars_adaptation_filter"] = utils_mod.exclude_bias_and_norm
    for p in params:
        opt.state[p]["mu"] = torch.ones_like(p)
    ddp_state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save(dict(epoch=7, model=ddp_state, optimizer=opt.state_dict()), path)
    return model


@pytest.mark.parametrize("with_projector", [True, False])
def test_official_per_epoch_checkpoint(tmp_path, official_utils_module, monkeypatch,
                                       with_projector):
    path = tmp_path / "checkpoint.pth"
    model = _official_checkpoint(path, official_utils_module, with_projector=with_projector)
    monkeypatch.delitem(sys.modules, "utils")  # loading must not need (or import) the module
    loaded = load_checkpoint(path)
    assert loaded.source == "directclr-official" and loaded.weights_only
    assert (loaded.backbone, loaded.epoch, loaded.step) == ("resnet18", 7, None)
    _assert_same(loaded.backbone_state, model.backbone.state_dict())
    _assert_same(loaded.classifier_state, model.online_head.state_dict())
    if with_projector:
        _assert_same(loaded.projector_state, model.projector.state_dict())
    else:
        assert loaded.projector_state is None
    _loads_strictly(loaded)
    assert "utils" not in sys.modules


def test_official_final_file_resnet50(tmp_path):
    backbone = _backbone("resnet50", seed=3)
    head = nn.Linear(2048, 1000)
    torch.save(dict(backbone=backbone.state_dict(), head=head.state_dict()), tmp_path / "f.pth")
    loaded = load_checkpoint(tmp_path / "f.pth")
    assert (loaded.source, loaded.backbone, loaded.feature_dim) == (
        "directclr-official-final", "resnet50", 2048)
    _assert_same(loaded.backbone_state, backbone.state_dict())
    _assert_same(loaded.classifier_state, head.state_dict())
    assert loaded.projector_state is None
    _loads_strictly(loaded)


# the shape of np.random.get_state(): arrays and numpy scalars must load with weights_only
_NUMPY_STATE = ("MT19937", np.arange(624, dtype=np.uint32), 5, 0, np.float64(0.0))


def _our_checkpoint(path, *, stem="cifar", version=1, config_stem=None):
    backbone = _backbone("resnet18", seed=4, stem=stem)
    projector = nn.Linear(512, 128, bias=False)
    classifier = nn.Linear(512, 10)
    model_cfg = {"backbone": "resnet18", "stem": config_stem or stem, "projector": "linear",
                 "d0": None}
    torch.save({
        "format": "dimcollapse-checkpoint", "format_version": version,
        "backbone": backbone.state_dict(), "projector": projector.state_dict(),
        "classifier": classifier.state_dict(), "optimizer": {"state": {}, "param_groups": []},
        "step": 1234, "config": {"model": model_cfg, "data": {"dataset": "cifar10",
                                                             "image_size": 32}},
        "rng": {"torch": torch.get_rng_state(), "numpy": _NUMPY_STATE,
                "python": 3.5},
        "git_sha": "abc", "metadata": {"seconds": np.float64(1.5)},
    }, path)
    return backbone, projector, classifier


def test_our_checkpoint_with_numpy_rng_state_loads_weights_only(tmp_path):
    backbone, projector, classifier = _our_checkpoint(tmp_path / "ours.pt")
    loaded = load_checkpoint(tmp_path / "ours.pt")
    assert (loaded.source, loaded.backbone, loaded.stem, loaded.step) == (
        "dimcollapse", "resnet18", "cifar", 1234)
    assert loaded.weights_only and loaded.config["data"]["dataset"] == "cifar10"
    _assert_same(loaded.backbone_state, backbone.state_dict())
    _assert_same(loaded.projector_state, projector.state_dict())
    _assert_same(loaded.classifier_state, classifier.state_dict())
    _loads_strictly(loaded, stem="cifar")
    assert loaded.describe()["has_projector"] is True
    with pytest.raises(UserError, match="trained with backbone resnet18"):
        load_checkpoint(tmp_path / "ours.pt", backbone="resnet50")


def test_our_checkpoint_inconsistencies(tmp_path):
    _our_checkpoint(tmp_path / "v2.pt", version=2)
    with pytest.raises(UserError, match="format_version 2"):
        load_checkpoint(tmp_path / "v2.pt")
    _our_checkpoint(tmp_path / "stem.pt", stem="cifar", config_stem="imagenet")
    with pytest.raises(UserError, match="stem 'imagenet'"):
        load_checkpoint(tmp_path / "stem.pt")


def test_missing_num_batches_tracked_is_filled_in(tmp_path):
    state = {k: v for k, v in _resnet(seed=5).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    loaded = load_checkpoint(tmp_path / "old.pth")
    _loads_strictly(loaded)
    assert int(loaded.backbone_state["bn1.num_batches_tracked"]) == 0


def test_errors(tmp_path):
    with pytest.raises(UserError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(UserError, match="is a folder"):
        load_checkpoint(tmp_path)
    torch.save({"foo": 1, "bar": torch.zeros(2)}, tmp_path / "odd.pt")
    with pytest.raises(UserError, match="not a recognised checkpoint.*dimcollapse.*torchvision"):
        load_checkpoint(tmp_path / "odd.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(UserError, match="holds a Tensor"):
        load_checkpoint(tmp_path / "tensor.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    data = (tmp_path / "odd.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")


def test_architecture_mismatches(tmp_path):
    wide = torchvision.models.wide_resnet50_2().state_dict()  # resnet50 keys, other shapes
    torch.save(wide, tmp_path / "wide.pth")
    with pytest.raises(UserError, match="do not match a resnet50.*wrong shape"):
        load_checkpoint(tmp_path / "wide.pth")
    state = _resnet(seed=6).state_dict()
    del state["layer3.1.conv2.weight"]
    torch.save(state, tmp_path / "holed.pth")
    with pytest.raises(UserError, match="missing: layer3.1.conv2.weight"):
        load_checkpoint(tmp_path / "holed.pth")
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "r34.pth")
    with pytest.raises(UserError, match="resnet34, which dimcollapse does not build"):
        load_checkpoint(tmp_path / "r34.pth")


def test_unsafe_file_refused_then_loaded_on_request(tmp_path):
    torch.save(_resnet(seed=7), tmp_path / "whole_model.pt")  # pickles the nn.Module itself
    with pytest.raises(UserError, match="weights_only=True.*torchvision.models.resnet.ResNet"
                                        ".*--unsafe-load"):
        load_checkpoint(tmp_path / "whole_model.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_checkpoint(tmp_path / "whole_model.pt", allow_unsafe=True)
    assert [w.category for w in caught] == [UnsafeLoadWarning]
    assert "weights_only=False" in str(caught[0].message)
    assert not loaded.weights_only and loaded.source == "torchvision"
    _assert_same(loaded.backbone_state, {k: v for k, v in _resnet(seed=7).state_dict().items()
                                         if not k.startswith("fc.")})


def test_reads_what_the_trainer_writes(tmp_path):
    """Our format as train/checkpoint.py writes it (the same constants, real RNG capture)."""
    from dimcollapse.eval.checkpoints import FORMAT_NAME, FORMAT_VERSION
    from dimcollapse.train import checkpoint as train_ckpt

    assert (FORMAT_NAME, FORMAT_VERSION) == (train_ckpt.FORMAT, train_ckpt.FORMAT_VERSION)
    backbone = _backbone("resnet18", seed=8)
    train_ckpt.save_checkpoint(tmp_path / "checkpoint_000010.pt", {
        "backbone": backbone.state_dict(), "projector": {}, "classifier": {},
        "optimizer": {"state": {}, "param_groups": []}, "step": 10,
        "config": {"model": {"backbone": "resnet18", "stem": "imagenet"}},
        "rng": train_ckpt.capture_rng(),
    })
    loaded = load_checkpoint(tmp_path / "checkpoint_000010.pt")
    assert (loaded.source, loaded.step, loaded.weights_only) == ("dimcollapse", 10, True)
    _assert_same(loaded.backbone_state, backbone.state_dict())
    assert loaded.describe()["has_projector"] is False
