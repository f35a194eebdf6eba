"""The experiments: batched == one run at a time, determinism, JSON keys, short-run results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dimcollapse.errors import UserError
from dimcollapse.toy import outputs
from dimcollapse.toy.depth import DepthConfig, run_depth
from dimcollapse.toy.implicit_reg import ImplicitRegConfig, run_implicit_reg
from dimcollapse.toy.strong_aug import StrongAugConfig, run_strong_aug


@pytest.fixture(scope="module")
def strong_1000():
    return run_strong_aug(StrongAugConfig(k_values=(0.5, 2.0), steps=1000), progress=False)


def test_strong_aug_short_run_collapses_the_noisy_columns_at_k2_only(strong_1000):
    runs = {r["k"]: r for r in strong_1000["runs"]}
    assert runs[2.0]["clean_over_noisy_end"] >= 5
    assert runs[2.0]["noisy_col_norm_end"] < 0.5 * runs[2.0]["noisy_col_norm_start"]
    assert 1 / 1.5 <= runs[0.5]["clean_over_noisy_end"] <= 1.5
    assert runs[2.0]["x_negative_start"] == 8  # Theorem 1's strong-augmentation condition


def test_strong_aug_json_keys_and_shapes(strong_1000):
    run = strong_1000["runs"][0]
    for key in ("k", "weight_start", "weight_end", "sv_start", "sv_end", "sv_trajectory",
                "x_eigenvalues_start", "x_eigenvalues_end", "embedding_spectrum"):
        assert key in run
    assert np.asarray(run["weight_end"]).shape == (16, 16)
    assert np.asarray(run["sv_trajectory"]).shape == (11, 16)  # steps 0, 100, ..., 1000
    assert strong_1000["trajectory_steps"][-1] == 1000
    # the recorded singular values are those of the recorded weights
    np.testing.assert_allclose(np.linalg.svd(np.asarray(run["weight_end"]), compute_uv=False),
                               run["sv_end"], rtol=1e-6)


def test_batched_sweep_equals_each_run_alone():
    kw = dict(steps=60, dtype="float64", record_every=20)
    both = run_strong_aug(StrongAugConfig(k_values=(0.5, 3.0), **kw), progress=False)
    alone = run_strong_aug(StrongAugConfig(k_values=(3.0,), **kw), progress=False)
    np.testing.assert_allclose(both["runs"][1]["weight_end"], alone["runs"][0]["weight_end"],
                               rtol=1e-12, atol=1e-14)
    assert both["runs"][0]["weight_end"] != both["runs"][1]["weight_end"]


def test_batched_depths_equal_each_depth_alone():
    kw = dict(steps=40, dtype="float64", record_every=20)
    many = run_depth(DepthConfig(depths=(1, 3), relu=(False, True), **kw), progress=False)
    one = run_depth(DepthConfig(depths=(3,), relu=(True,), **kw), progress=False)
    got = next(r for r in many["runs"] if r["layers"] == 3 and r["relu"])
    np.testing.assert_allclose(got["embedding_spectrum"], one["runs"][0]["embedding_spectrum"],
                               rtol=1e-10)


def test_same_seed_same_json_bytes_and_other_seed_differs(tmp_path):
    cfg = StrongAugConfig(k_values=(1.0,), steps=200)
    outputs.strong_aug(cfg, tmp_path / "a", progress=False)
    outputs.strong_aug(cfg, tmp_path / "b", progress=False)
    outputs.strong_aug(StrongAugConfig(k_values=(1.0,), steps=200, seed=1), tmp_path / "c",
                       progress=False)
    a, b, c = ((tmp_path / n / "strong_aug.json").read_bytes() for n in "abc")
    assert a == b
    assert a != c
    assert (tmp_path / "a" / "strong_aug.png").stat().st_size > 1000
    assert json.loads((tmp_path / "a" / "strong_aug.meta.json").read_text())["git_sha"] != ""


def test_implicit_reg_short_run_collapses_and_starts_aligning():
    res = run_implicit_reg(ImplicitRegConfig(steps=1000), progress=False)
    for key in ("steps", "alignment_start", "alignment_end", "sv_w1_trajectory",
                "sv_w2_trajectory", "embedding_spectrum_trajectory",
                "alignment_diagonal_mass", "alignment_block_mass", "runs"):
        assert key in res
    assert np.asarray(res["alignment_end"]).shape == (16, 16)
    assert len(res["sv_w1_trajectory"]) == len(res["steps"]) == 11
    assert res["collapsed_end"] > res["collapsed_start"]
    assert res["alignment_diagonal_mass"][-1] > 3 * res["alignment_diagonal_mass"][0]
    assert res["grown_alignment_mass"][-1] > 0.9


def test_depth_short_run_shows_the_papers_ordering():
    res = run_depth(DepthConfig(steps=1000, depths=(1, 2, 4), relu=(False,)), progress=False)
    runs = {r["layers"]: r for r in res["runs"]}
    assert set(runs[1]) >= {"layers", "relu", "embedding_spectrum_start", "embedding_spectrum"}
    assert runs[1]["collapsed_end"] == 0
    assert runs[2]["collapsed_end"] > runs[2]["collapsed_start"]
    assert runs[4]["collapsed_end"] >= runs[2]["collapsed_end"]


@pytest.mark.parametrize("cfg", [StrongAugConfig(k_values=(-1.0,)), StrongAugConfig(steps=0),
                                 StrongAugConfig(init="xavier"), StrongAugConfig(lr=0.0)])
def test_bad_settings_raise_user_error(cfg):
    with pytest.raises(UserError):
        run_strong_aug(cfg, progress=False)


def test_divergence_is_reported_as_user_error():
    with pytest.raises(UserError, match="diverged"):
        run_strong_aug(StrongAugConfig(k_values=(3.0,), steps=300, reduction="sum"),
                       progress=False)
