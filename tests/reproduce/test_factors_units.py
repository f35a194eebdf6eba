"""collapse-factors without training: the settings list (one factor at a time, the baseline
shared), the eigenvalue counts against a slow reference, the noise floor's formula, and the
results.md sentences on synthetic numbers (collapse in some settings / in none)."""

from __future__ import annotations

import numpy as np
import pytest

from dimcollapse.config import config_to_dict, flatten
from dimcollapse.errors import UserError
from dimcollapse.reproduce import Arm, Budget
from dimcollapse.reproduce.factors import collapse_settings
from dimcollapse.reproduce.factors_results import counts_below, findings, precision_line
from dimcollapse.reproduce.precision import noise_floor
from dimcollapse.reproduce.results import stat

CPU_KEYS = ["baseline", "jitter-0.5", "jitter-1.5", "crop-0.2", "crop-0.5",
            "weight-decay-0.0001", "weight-decay-0.0005", "lr-x0.3", "lr-x3",
            "optimizer-lars", "stem-cifar16"]
# the config keys each factor may change
TOUCHES = {"jitter": {"views.color_jitter_strength"}, "crop": {"views.crop_min_scale"},
           "weight-decay": {"optim.weight_decay"}, "lr": {"optim.lr"},
           "optimizer": {"optim.name"}, "stem": {"model.stem", "data.image_size"}}


def _flat(budget, setting):
    return flatten(config_to_dict(setting.budget(budget).config(Arm("none"), 0)))


def test_cpu_settings_change_one_factor_each_and_share_the_baseline():
    b = Budget("cpu", "/data")
    settings, table = collapse_settings(b.config(Arm("none"), 0))
    assert [s.key for s in settings] == CPU_KEYS
    base = _flat(b, settings[0])
    for s in settings[1:]:
        flat = _flat(b, s)
        changed = {k for k in flat if flat[k] != base[k]}
        assert changed and changed <= TOUCHES[s.factor], (s.key, changed)
    assert {n: [v["setting"] for v in vals] for n, vals in table.items()} == {
        "jitter": ["jitter-0.5", "baseline", "jitter-1.5"],
        "crop": ["baseline", "crop-0.2", "crop-0.5"],
        "weight-decay": ["baseline", "weight-decay-0.0001", "weight-decay-0.0005"],
        "lr": ["lr-x0.3", "baseline", "lr-x3"],
        "optimizer": ["baseline", "optimizer-lars"],
        "stem": ["baseline", "stem-cifar16"]}
    lr = {s.key: s.budget(b).config(Arm("none"), 0).optim.lr for s in settings}
    assert lr["baseline"] == pytest.approx(0.3) and lr["lr-x0.3"] == pytest.approx(0.09)
    assert lr["lr-x3"] == pytest.approx(0.9)
    stem = _flat(b, settings[-1])
    assert (stem["model.stem"], stem["data.image_size"]) == ("cifar", 16)


def test_cifar_preset_keeps_its_own_baseline_values():
    b = Budget("cifar", "/data")
    settings, table = collapse_settings(b.config(Arm("none"), 0))
    keys = [s.key for s in settings]
    assert "optimizer-sgd" in keys and "optimizer-lars" not in keys  # the preset is LARS
    assert "stem-imagenet32" in keys and "stem-cifar16" in keys  # the preset is cifar at 32
    assert table["stem"][0] == {"value": ["cifar", 32], "label": "cifar32 (preset)",
                                "setting": "baseline"}


def test_reduced_grid_and_bad_grids():
    b = Budget("cpu", "/data")
    cfg = b.config(Arm("none"), 0)
    settings, table = collapse_settings(cfg, {"weight-decay": [1e-4]})
    assert [s.key for s in settings] == ["baseline", "weight-decay-0.0001"]
    assert table["weight-decay"][0]["label"] == "1e-06 (preset)"  # the preset's value added
    with pytest.raises(UserError, match="unknown factor"):
        collapse_settings(cfg, {"colour": [1.0]})
    with pytest.raises(UserError, match="twice"):
        collapse_settings(cfg, {"jitter": [0.5, 0.5]})


def test_counts_below_match_a_slow_count():
    rng = np.random.default_rng(0)
    ev = np.exp(rng.uniform(-14, 0, size=64))
    top = ev.max()
    got = counts_below(ev)
    for t, key in ((1e-3, "1e-03"), (1e-4, "1e-04"), (1e-5, "1e-05")):
        assert got[key] == sum(1 for v in ev if v < t * top)
    # only the max_rank measurable (largest) eigenvalues count
    srt = sorted(ev, reverse=True)[:40]
    assert counts_below(ev, 40)["1e-05"] == sum(1 for v in srt if v < 1e-5 * top)


def test_noise_floor_is_the_difference_spectrum_over_the_top_eigenvalue():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8)) * np.array([3, 2, 1, 1, 0.5, 0.1, 0.01, 0.001])
    same = noise_floor(x, x)
    assert same["noise_floor"] == 0 and same["fp32"]["below"] == same["bf16"]["below"]
    y = x + rng.normal(scale=1e-3, size=x.shape)
    res = noise_floor(x, y)
    a = x / np.linalg.norm(x, axis=1, keepdims=True)
    b = y / np.linalg.norm(y, axis=1, keepdims=True)
    ref = np.linalg.eigvalsh(np.cov((b - a).T, bias=True)).max() / \
        np.linalg.eigvalsh(np.cov(a.T, bias=True)).max()
    assert res["noise_floor"] == pytest.approx(ref, rel=1e-9)
    assert res["fp32"]["below"] == counts_below(np.linalg.eigvalsh(np.cov(a.T, bias=True)))


class S:  # a Setting's shape, as findings reads it
    def __init__(self, key, label):
        self.key, self.label = key, label


def _row(setting, arm, counts, rankme=10.0):
    return {"setting": setting, "arm": arm, "dim": 512,
            "below_r": {k: stat([v]) for k, v in zip(("1e-03", "1e-04", "1e-05"), counts,
                                                       strict=True)},
            "rankme_r": stat([rankme])}


SETTINGS = [S("baseline", "baseline"), S("jitter-1.5", "jitter 1.5"), S("wd", "weight-decay 5e-4")]


def test_findings_name_the_collapsing_settings_and_the_projectors_change():
    rows = [_row("baseline", "none", (3, 0, 0)), _row("baseline", "mlp", (5, 1, 0)),
            _row("jitter-1.5", "none", (90, 40, 12)), _row("jitter-1.5", "mlp", (10, 2, 0)),
            _row("wd", "none", (20, 7, 1)), _row("wd", "mlp", (4, 0, 0))]
    f = findings(rows, SETTINGS)
    assert f["collapsed"] == ["jitter-1.5", "wd"]
    by = {e["setting"]: e for e in f["settings"]}
    assert by["jitter-1.5"]["change"] == {"1e-03": -80, "1e-04": -38, "1e-05": -12}
    first, second = f["lines"][:2]
    assert first.startswith("r collapses without a projector") and "in 2 of 3 settings" in first
    assert "jitter 1.5 (40 without a projector, 2 with the 2-layer projector: it changes the " \
           "count by -38)" in first and "weight-decay 5e-4 (7 without" in first
    assert "baseline" not in first.split(":", 1)[1]
    assert "by -38 (jitter 1.5) to +1 (baseline)" in second
    assert second.endswith("more such eigenvalues with the projector than without in baseline.")


def test_findings_when_nothing_collapses():
    rows = [_row("baseline", "none", (2, 0, 0)), _row("baseline", "mlp", (9, 0, 0)),
            _row("jitter-1.5", "none", (0, 0, 0)), _row("jitter-1.5", "mlp", (0, 0, 0)),
            _row("wd", "none", (1, 0, 0)), _row("wd", "mlp", (0, 0, 0))]
    f = findings(rows, SETTINGS)
    assert f["collapsed"] == []
    assert f["lines"][0].startswith("r does not collapse without a projector in any of the 3 "
                                    "settings")
    assert f["lines"][0].endswith("at most 0 (baseline).")
    assert "in no setting." in f["lines"][1]


def test_precision_line_marks_thresholds_under_the_noise_floor():
    p = {"setting": "baseline", "arm": "none", "seed": 0, "noise_floor": 3e-5,
         "fp32": {"below": {"1e-03": 0, "1e-04": 2, "1e-05": 9}},
         "bf16": {"below": {"1e-03": 0, "1e-04": 2, "1e-05": 11}}}
    line = precision_line(p)
    assert "< 1e-05: 9 / 11 (they differ)" in line and "counts at 1e-05 are within" in line
    p["noise_floor"] = 1e-7
    assert "every threshold lies above the noise" in precision_line(p)
