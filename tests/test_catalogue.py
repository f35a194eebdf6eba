"""The catalogue is the only list of names and flags: every registry agrees with it, every
config field has its flag, and `train --help` shows the dataclass defaults."""

import dataclasses
import re

import pytest

from dimcollapse import catalogue
from dimcollapse.catalogue import FLAGS, NO_FLAG, Names, check_d0, flag_args, show
from dimcollapse.cli import build_parser
from dimcollapse.config import SECTIONS, TrainConfig
from dimcollapse.errors import UserError


def _registries():
    from dimcollapse.data import DATASETS
    from dimcollapse.losses import LOSSES
    from dimcollapse.models import BACKBONES, PROJECTORS
    from dimcollapse.optim import OPTIMIZERS
    from dimcollapse.views import VIEW_PRESETS

    return {"PROJECTORS": PROJECTORS, "LOSSES": LOSSES, "BACKBONES": BACKBONES,
            "DATASETS": DATASETS, "VIEW_PRESETS": VIEW_PRESETS, "OPTIMIZERS": OPTIMIZERS}


def test_every_registry_equals_the_catalogue():
    for name, registry in _registries().items():
        assert list(registry) == list(getattr(catalogue, name)), name


def test_uses_d0_names_exactly_the_arms_that_need_d0():
    from dimcollapse.models import build_projector

    needs = []
    for name in catalogue.PROJECTORS:
        try:
            build_projector(name, 16)
        except UserError as err:
            assert "needs d0" in str(err), err
            needs.append(name)
    assert needs == list(catalogue.USES_D0)


def test_names_check_and_register():
    names, registry = Names("thing", ("a", "b")), {"a": 1, "b": 2}
    names.check(registry)
    with pytest.raises(RuntimeError, match="thing registry"):
        names.check({"a": 1})
    with pytest.raises(RuntimeError, match="disagrees"):
        names.check({"b": 2, "a": 1})  # order is part of the vocabulary (--help lists it)
    names.register("c", registry, 3)
    assert registry == {"a": 1, "b": 2, "c": 3} and list(names) == ["a", "b", "c"]
    names.check(registry)
    with pytest.raises(ValueError, match="already registered"):
        names.register("a", registry, 4)
    names.unregister("c", registry)
    assert registry == {"a": 1, "b": 2} and "c" not in names


def _config_keys():
    keys = []
    for f in dataclasses.fields(TrainConfig):
        if f.name in SECTIONS:
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(getattr(TrainConfig(),
                                                                              f.name))]
        else:
            keys.append(f.name)
    return keys


def test_every_config_field_has_one_flag():
    keys = [f.key for f in FLAGS]
    assert len(keys) == len(set(keys)) and len({f.flag for f in FLAGS}) == len(FLAGS)
    assert sorted(keys + list(NO_FLAG)) == sorted(_config_keys())


def _default(key):
    section, _, name = key.rpartition(".")
    cfg = TrainConfig()
    return getattr(getattr(cfg, section) if section else cfg, name)


def _train_parser():
    return build_parser()._subparsers._group_actions[0].choices["train"]


def test_help_defaults_are_the_dataclass_defaults():
    actions = {a.option_strings[0]: a for a in _train_parser()._actions if a.option_strings}
    checked = 0
    for f in FLAGS:
        text = actions[f.flag].help
        # "default X" names the dataclass default; "default: ..." explains what None means
        for shown in re.findall(r"\bdefault ([^\s,;:)]+)", text):
            assert shown == show(_default(f.key)), (f.flag, text)
            checked += 1
        assert not re.search(r"default \d", f.help), f"{f.flag}: a default typed by hand"
    assert checked >= 12
    assert "(default 4096)" in actions["--batch-size"].help
    assert "(default on)" in actions["--sync-bn"].help


def test_help_lists_the_registered_names_and_enforces_choices():
    actions = {a.option_strings[0]: a for a in _train_parser()._actions if a.option_strings}
    assert actions["--projector"].help == "one of " + ", ".join(catalogue.PROJECTORS)
    assert all(n in actions["--d0"].help for n in catalogue.USES_D0)
    assert list(actions["--dataset"].choices) == list(catalogue.DATASETS)
    assert list(actions["--precision"].choices) == list(catalogue.PRECISIONS)
    assert actions["--projector"].choices is None  # unknown arms: build_projector's UserError


def test_flag_args():
    assert flag_args("model.d0", 90) == ["--d0", "90"]
    assert flag_args("loop.channels_last", False) == ["--no-channels-last"]
    assert flag_args("loss.normalize", True) is None and flag_args("model.d0", None) is None


@pytest.mark.parametrize("d0, dim, needle", [
    (513, 512, "--d0 513 exceeds the representation size 512"),
    (65, 64, "d0 = 65 does not fit the 64-d representation r of 64 coordinates"),
    (0, 64, "d0 = 0 does not fit the 64-d representation"),
    (0, None, "d0 = 0 must be a positive integer"),
    (2.5, 64, "d0 must be a positive integer"),
])
def test_check_d0_is_the_one_message(d0, dim, needle):
    with pytest.raises(UserError, match=re.escape(needle)):
        check_d0(d0, dim)


def test_check_d0_accepts_and_requires():
    assert check_d0(None) is None and check_d0(64, 64) == 64 and check_d0(3) == 3
    with pytest.raises(UserError, match="projector 'directclr' needs d0"):
        check_d0(None, 64, needed_by="directclr")
