"""`train --dataset cifar10 --data-dir OTHER_TREE` names the data as what it is, in one line,
and records the normalisation it used."""

from __future__ import annotations

import json

import pytest
from trainhelpers import tiny_overrides

from dimcollapse.data.registry import CIFAR10_MEAN
from dimcollapse.train import run_training


@pytest.mark.usefixtures("one_thread")
def test_other_tree_is_not_trained_silently_as_cifar10(tiny_data, tmp_path, capsys):
    over = tiny_overrides(tiny_data, tmp_path / "cache", **{"loop.max_steps": 1,
                                                            "loop.spectrum_every_steps": 0})
    run_training(tmp_path / "run", overrides=over)
    err = capsys.readouterr().err.splitlines()
    notes = [ln for ln in err if "is not cifar10" in ln]
    assert len(notes) == 1 and "own train-split mean" in notes[0], err
    assert any(" on imagefolder (48 images)" in ln for ln in err), err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["dataset"] == "imagefolder" and run["data_note"] == notes[0].split(": ", 1)[1]
    assert tuple(run["normalization"]["mean"]) != CIFAR10_MEAN
