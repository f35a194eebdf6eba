"""Training config: paper defaults, presets, strict overrides, JSON round trip."""

import json

import pytest

from dimcollapse.config import (
    PRESETS,
    TrainConfig,
    apply_overrides,
    config_diff,
    config_from_dict,
    config_to_dict,
    default_config,
    load_config,
    preset_config,
    resolve,
    save_config,
)
from dimcollapse.errors import UserError


def test_defaults_are_the_papers_appendix_d_recipe():
    cfg = resolve(default_config())
    assert cfg.model.backbone == "resnet50" and cfg.model.projector == "mlp"
    assert cfg.model.sync_bn is True and cfg.model.out_dim is None
    assert cfg.optim.name == "lars" and cfg.optim.eta == 0.001 and cfg.optim.momentum == 0.9
    assert cfg.loop.batch_size == 4096 and cfg.loop.epochs == 100
    assert cfg.optim.lr == pytest.approx(4.8)  # 0.3 x 4096 / 256
    assert cfg.optim.weight_decay == 1e-6 and cfg.optim.warmup_epochs == 10
    assert cfg.loss.name == "infonce" and cfg.loss.temperature == 0.1
    assert cfg.loop.precision == "auto"


def test_lr_follows_the_linear_scaling_rule_unless_given():
    cfg = resolve(apply_overrides(default_config(), {"loop.batch_size": 512}))
    assert cfg.optim.lr == pytest.approx(0.6)
    cfg = resolve(apply_overrides(default_config(), {"optim.lr": 1.5, "loop.batch_size": 512}))
    assert cfg.optim.lr == 1.5


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_resolve_and_record_their_name(name):
    cfg = resolve(preset_config(name))
    assert cfg.preset == name
    assert cfg.optim.lr > 0


def test_cpu_preset_is_small_and_explicit_flags_override_it():
    cfg = preset_config("cpu")
    assert cfg.model.backbone == "resnet18" and cfg.data.image_size == 32
    assert cfg.loop.max_steps is not None and cfg.loop.batch_size == 256
    over = apply_overrides(cfg, {"model": {"projector": "directclr", "d0": 90}, "seed": 3})
    assert over.model.projector == "directclr" and over.model.d0 == 90 and over.seed == 3
    assert over.model.backbone == "resnet18"  # untouched preset values stay


@pytest.mark.parametrize("bad", [
    {"model.nope": 1},
    {"nosection": {"a": 1}},
    {"model": {"d0": "ten"}},
    {"loop": {"batch_size": 2.5}},
    {"model": {"sync_bn": 1}},
    {"loop": {"epochs": True}},
])
def test_unknown_keys_and_wrong_types_are_user_errors(bad):
    with pytest.raises(UserError):
        apply_overrides(default_config(), bad)


def test_unknown_preset_is_a_user_error():
    with pytest.raises(UserError, match="unknown preset"):
        preset_config("laptop")


@pytest.mark.parametrize("over, msg", [
    ({"loop.batch_size": 0}, "batch-size"),
    ({"loop.precision": "fp8"}, "precision"),
    ({"model.d0": 0}, "d0"),
])
def test_resolve_rejects_bad_values(over, msg):
    with pytest.raises(UserError, match=msg):
        resolve(apply_overrides(default_config(), over))


def test_json_round_trip_is_exact(tmp_path):
    cfg = resolve(apply_overrides(preset_config("cifar"), {"model.d0": 64, "optim.lr": 0.123}))
    save_config(cfg, tmp_path / "c.json")
    back = load_config(tmp_path / "c.json")
    assert back == cfg
    assert config_from_dict(json.loads((tmp_path / "c.json").read_text())) == cfg
    assert config_to_dict(back)["model"]["d0"] == 64


def test_loading_a_file_with_an_unknown_key_fails(tmp_path):
    d = config_to_dict(TrainConfig())
    d["loop"]["batchsize"] = 3
    (tmp_path / "c.json").write_text(json.dumps(d))
    with pytest.raises(UserError, match="loop.batchsize"):
        load_config(tmp_path / "c.json")
    with pytest.raises(UserError, match="no such config"):
        load_config(tmp_path / "missing.json")


def test_config_diff_names_changed_fields():
    a = default_config()
    b = apply_overrides(a, {"model.d0": 5, "seed": 2})
    assert config_diff(a, b) == {"model.d0": (None, 5), "seed": (0, 2)}
    assert config_diff(a, a) == {}
