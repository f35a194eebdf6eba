"""`dimcollapse train` flags, presets, and its one-line errors for bad input."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from dimcollapse.cli import build_parser, main
from dimcollapse.cli.train import FLAG_KEYS
from dimcollapse.config import PRESETS, preset_config, resolve


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny runs below are faster so on a shared CPU
    yield
    torch.set_num_threads(before)


def _tree(root, classes=3, per_class=6, size=16):
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / "train" / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                folder / f"{i}.jpg")
    return root


def _help() -> str:
    sub = build_parser()._subparsers._group_actions[0].choices["train"]
    return sub.format_help()


def test_help_documents_every_flag_and_the_presets():
    text = _help()
    parser = build_parser()._subparsers._group_actions[0].choices["train"]
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 10, action.dest
    for dest in FLAG_KEYS:
        assert "--" + dest.replace("_", "-") in text or dest == "workers"
    for name in PRESETS:
        assert re.search(rf"^\s+{name}\s+\S", text, re.M), name
    # Units of the quantities users get wrong.
    for flag, unit in [("--batch-size", "PAIRS"), ("--max-steps", "STEPS"),
                       ("--checkpoint-every", "STEPS"), ("--image-size", "PIXELS"),
                       ("--warmup-epochs", "EPOCHS"), ("--d0", "DIMS")]:
        assert f"{flag} {unit}" in text


def test_explicit_flags_override_the_preset(tmp_path, capsys):
    rc = main(["train", "--preset", "cpu", "--projector", "directclr", "--d0", "90",
               "--epochs", "5", "--lr-per-256", "0.1", "--no-channels-last", "--threads", "1",
               "--out", str(tmp_path / "r"), "--print-config"])
    assert rc == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["preset"] == "cpu" and cfg["model"]["backbone"] == "resnet18"
    assert cfg["model"]["projector"] == "directclr" and cfg["model"]["d0"] == 90
    assert cfg["loop"]["epochs"] == 5 and cfg["loop"]["max_steps"] is None  # epochs beat steps
    assert cfg["optim"]["lr"] == pytest.approx(0.1)  # 0.1 x 256 / 256
    assert cfg["loop"]["channels_last"] is False and cfg["loop"]["threads"] == 1
    assert not (tmp_path / "r").exists()  # --print-config writes nothing


def test_default_is_the_papers_recipe(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    paper = resolve(preset_config("imagenet"))
    assert cfg["optim"]["lr"] == paper.optim.lr == pytest.approx(4.8)
    assert cfg["loop"]["batch_size"] == 4096 and cfg["model"]["backbone"] == "resnet50"


def test_config_file_is_a_base_and_flags_still_win(tmp_path, capsys):
    main(["train", "--preset", "cifar", "--out", str(tmp_path / "a"), "--print-config"])
    (tmp_path / "c.json").write_text(capsys.readouterr().out)
    assert main(["train", "--config", str(tmp_path / "c.json"), "--seed", "4",
                 "--out", str(tmp_path / "b"), "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["preset"] == "cifar" and cfg["seed"] == 4 and cfg["loop"]["epochs"] == 800


def _fails(argv, capsys, *needles):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("flags, needles", [
    (["--projector", "foo"], ["unknown projector 'foo'"]),
    (["--projector", "lowrank", "--d0", "513"], ["--d0 513", "512"]),
    (["--projector", "directclr"], ["needs d0"]),
])
def test_print_config_checks_the_config_as_a_run_does(tmp_path, capsys, flags, needles):
    """Defect: --print-config printed (exit 0) configs that every run rejects."""
    _fails(["train", "--preset", "cpu", *flags, "--out", str(tmp_path / "r"), "--print-config"],
           capsys, *needles)
    assert not (tmp_path / "r").exists()


def _tiny(tmp_path, data):
    return ["train", "--preset", "cpu", "--dataset", "cifar10", "--data-dir", str(data),
            "--image-size", "16", "--batch-size", "8", "--max-steps", "2",
            "--precision", "fp32", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "run"), "--quiet"]


def test_corrupt_jpeg_is_named(tmp_path, capsys):
    data = _tree(tmp_path / "data")
    bad = data / "train" / "c1" / "3.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    _fails(_tiny(tmp_path, data), capsys, str(bad))


def test_missing_data_dir(tmp_path, capsys):
    _fails(_tiny(tmp_path, tmp_path / "nowhere"), capsys, str(tmp_path / "nowhere"),
           "--data-dir")


def test_d0_larger_than_the_representation(tmp_path, capsys):
    data = _tree(tmp_path / "data")
    _fails([*_tiny(tmp_path, data), "--projector", "directclr", "--d0", "600"], capsys,
           "600", "512")


def test_resume_with_a_different_recipe_is_refused(tmp_path, capsys):
    data = _tree(tmp_path / "data")
    assert main([*_tiny(tmp_path, data), "--spectrum-every", "0"]) == 0
    capsys.readouterr()
    _fails([*_tiny(tmp_path, data), "--seed", "1"], capsys, "seed=0 (asked 1)")


def test_batch_not_divisible_and_unknown_projector(tmp_path, capsys):
    data = _tree(tmp_path / "data")
    _fails([*_tiny(tmp_path, data), "--projector", "mlp3"], capsys, "mlp3")
