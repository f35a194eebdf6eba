"""report.md is built from files on disk; readings follow the numbers, sections compose."""

from __future__ import annotations

import json

import pytest

from dimcollapse.report import demo_report
from dimcollapse.toy import readings


def _strong(ratio_k2: float, shrunk_k2: int = 8, neg_k2: int = 8) -> dict:
    def run(k, ratio, shrunk, neg):
        sv_start = [1.0] * 16
        sv_end = [1.5] * (16 - shrunk) + [0.1] * shrunk
        return {"k": k, "sv_start": sv_start, "sv_end": sv_end, "x_negative_start": neg,
                "x_eigenvalues_start": [5.0] * (16 - neg) + [-1.0] * neg,
                "clean_over_noisy_end": ratio, "noisy_col_norm_start": 2.8,
                "noisy_col_norm_end": 2.8 / ratio}
    return {"noisy_dims": list(range(8, 16)),
            "config": {"k_values": [0.5, 2.0], "steps": 10},
            "runs": [run(0.5, 1.1, 0, 0), run(2.0, ratio_k2, shrunk_k2, neg_k2)]}


def _depth(l1_end: int) -> dict:
    return {"config": {"rel_threshold": 1e-4, "depths": [1, 2, 4]}, "runs": [
        {"layers": 1, "relu": False, "collapsed_start": 2, "collapsed_end": l1_end},
        {"layers": 2, "relu": False, "collapsed_start": 7, "collapsed_end": 11},
        {"layers": 4, "relu": False, "collapsed_start": 11, "collapsed_end": 14}]}


def test_strong_aug_reading_agrees_or_disagrees_with_the_numbers():
    good = " ".join(readings.strong_aug_readings(_strong(12.0)))
    assert "8 dimensions collapsed, as Theorem 1 predicts" in good
    assert ">= 5: met" in good
    bad = " ".join(readings.strong_aug_readings(_strong(2.0, shrunk_k2=3)))
    assert "does not match" in bad and "NOT met" in bad and "3 dimensions collapsed" in bad


def test_depth_reading_flags_a_disagreement():
    assert "as the paper finds" in readings.depth_readings(_depth(0))[0]
    assert "DISAGREES" in readings.depth_readings(_depth(3))[0]


def _write(run_dir, name, obj):
    (run_dir / "toy").mkdir(parents=True, exist_ok=True)
    (run_dir / "toy" / name).write_text(json.dumps(obj))


def test_report_reads_files_and_skips_missing_sections(tmp_path):
    _write(tmp_path, "strong_aug.json", _strong(12.0))
    _write(tmp_path, "depth.json", _depth(3))
    text = demo_report.build_report(tmp_path)
    assert "Fig 3" in text and "Fig 11" in text and "DISAGREES" in text
    assert "(toy/strong_aug.png)" in text
    assert "2 section(s) skipped" in text  # implicit-reg and verify are not on disk


def test_sections_compose(tmp_path):
    _write(tmp_path, "strong_aug.json", _strong(12.0))

    def images_section(run_dir):
        return demo_report.Section("Image models", ["a computed line"],
                                   [("images/spectrum.png", "spectrum")])

    path = demo_report.write_report(tmp_path, [demo_report.strong_aug_section, images_section])
    text = path.read_text()
    assert text.index("Fig 3") < text.index("## Image models")
    assert "![spectrum](images/spectrum.png)" in text


@pytest.mark.parametrize("passed", [True, False])
def test_verify_section_table(tmp_path, passed):
    _write(tmp_path, "verify.json", {"checks": [
        {"name": "lemma", "error": 1e-15, "tolerance": 1e-10, "passed": True, "detail": ""},
        {"name": "other", "error": 2.0 if not passed else 0.0, "tolerance": 0.0,
         "passed": passed, "detail": ""}]})
    text = demo_report.build_report(tmp_path, [demo_report.verify_section])
    assert "| lemma | 1.00e-15 | 1e-10 | PASS |" in text
    assert ("All 2 numeric checks" in text) is passed
    assert ("FAIL" in text) is not passed
