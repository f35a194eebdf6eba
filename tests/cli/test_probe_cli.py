"""`dimcollapse probe` and `dimcollapse spectrum RUN`: values equal the library applied to a
slow per-image reference of the features; official and torchvision files give the same numbers
as our checkpoint with the same weights; bad input is one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from evalfakes import (  # noqa: E402
    make_labelled_tree,
    official_files,
    reference_features,
    train_tiny,
)

from dimcollapse.cli import main  # noqa: E402
from dimcollapse.eval import knn_classify, linear_probe  # noqa: E402
from dimcollapse.spectrum import covariance_spectrum, rankme  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("probecli")
    data = make_labelled_tree(base / "data")
    torch.set_num_threads(1)
    return data, train_tiny(base / "run", data, base / "cache", **{"model.projector": "mlp"})


def _probe(argv, capsys):
    code = main(["probe", *argv, "--quiet", "--threads", "1"])
    out, err = capsys.readouterr()
    return code, out, err


def test_probe_json_equals_the_library_on_reference_features(run, tmp_path, capsys):
    data, rundir = run
    code, _, err = _probe([str(rundir), "--out", str(tmp_path), "--precision", "fp32"], capsys)
    assert code == 0, err
    rec = json.loads((tmp_path / "probe.json").read_text())
    rtr, _, ytr = reference_features(rundir / "checkpoint_final.pt", data, "train")
    rte, _, yte = reference_features(rundir / "checkpoint_final.pt", data, "test")
    lp = linear_probe(rtr, ytr, rte, yte)
    kn = knn_classify(rtr, ytr, rte, yte)
    got = rec["linear_probe"]
    assert got["top1"] == pytest.approx(lp.top1) and got["top5"] == pytest.approx(lp.top5)
    assert got["l2"] == lp.l2 and got["l2_source"] == "default" and got["converged"]
    assert rec["knn"]["top1"] == pytest.approx(kn.top1) and rec["knn"]["k"] == 200
    assert lp.top1 > 25.0  # the colour classes are learnable: a wrong row order would not be
    assert rec["checkpoint"]["source"] == "dimcollapse" and rec["checkpoint"]["step"] == 4
    assert rec["data"]["dataset"] == "cifar10" and rec["data"]["image_size"] == 16
    assert rec["features"]["train"]["n"] == 64 and rec["features"]["test"]["n"] == 24
    assert "git_sha" in rec["metadata"]


def test_probe_reuses_features_and_writes_the_subvector_file(run, tmp_path, capsys):
    data, rundir = run
    args = [str(rundir), "--out", str(tmp_path), "--no-knn"]
    assert _probe(args, capsys)[0] == 0
    first = json.loads((tmp_path / "probe.json").read_text())
    assert not first["features"]["train"]["cache_hit"] and first["knn"] is None
    assert _probe([*args, "--subvector", "7", "--l2", "0.5"], capsys)[0] == 0
    sub = json.loads((tmp_path / "probe_subvector7.json").read_text())
    assert sub["features"]["train"]["cache_hit"] and sub["features"]["test"]["cache_hit"]
    assert sub["dim"] == 7 and sub["subvector"] == 7 and sub["linear_probe"]["l2"] == 0.5
    tr = torch.load(sub["features"]["train"]["cache_file"], weights_only=True)["tensors"]
    te = torch.load(sub["features"]["test"]["cache_file"], weights_only=True)["tensors"]
    want = linear_probe(tr["r"][:, :7], tr["targets"], te["r"][:, :7], te["targets"], l2=0.5)
    assert sub["linear_probe"]["top1"] == pytest.approx(want.top1)
    assert json.loads((tmp_path / "probe.json").read_text()) == first  # not overwritten


def test_official_and_torchvision_files_give_the_same_numbers(run, tmp_path, capsys):
    data, rundir = run
    files = official_files(rundir / "checkpoint_final.pt", tmp_path / "files")
    ours_out = tmp_path / "ours"
    assert _probe([str(rundir / "checkpoint_final.pt"), "--out", str(ours_out)], capsys)[0] == 0
    ours = json.loads((ours_out / "probe.json").read_text())
    for name, path in files.items():
        out = tmp_path / name
        code, _, err = _probe([str(path), "--dataset", "cifar10", "--data-dir", str(data),
                               "--image-size", "16", "--backbone", "resnet18",
                               "--out", str(out)], capsys)
        assert code == 0, (name, err)
        rec = json.loads((out / "probe.json").read_text())
        assert rec["checkpoint"]["source"] != "dimcollapse"
        assert rec["linear_probe"]["top1"] == ours["linear_probe"]["top1"], name
        assert rec["knn"]["top1"] == ours["knn"]["top1"], name
    # the official final file through `spectrum` (representation) works; embedding does not
    out = tmp_path / "spec"
    code = main(["spectrum", str(files["final"]), "--dataset", "cifar10", "--data-dir",
                 str(data), "--image-size", "16", "--out", str(out), "--quiet"])
    assert code == 0 and (out / "spectrum.json").is_file()
    code = main(["spectrum", str(files["per_epoch"]), "--space", "embedding", "--dataset",
                 "cifar10", "--data-dir", str(data), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "only dimcollapse checkpoints record their projector" in err


def test_spectrum_of_a_run_equals_eqn1_on_reference_features(run, tmp_path, capsys):
    data, rundir = run
    for space in ("representation", "embedding"):
        code = main(["spectrum", str(rundir), "--space", space, "--feature-precision", "fp32",
                     "--features-dir", str(tmp_path / "f"), "--out", str(tmp_path / space),
                     "--quiet"])
        assert code == 0, capsys.readouterr().err
    r, z, _ = reference_features(rundir / "checkpoint_final.pt", data, "test", projector=True)
    for space, x in (("representation", r), ("embedding", z)):
        rec = json.loads((tmp_path / space / "spectrum.json").read_text())
        want = covariance_spectrum(x.double(), normalize=True)
        assert np.abs(np.array(rec["eigenvalues"]) - want).max() / want[0] < 1e-4
        assert rec["rankme"] == pytest.approx(rankme(x.double()), rel=1e-4)
        assert rec["source"]["space"] == space and rec["source"]["split"] == "test"
        assert rec["dim"] == x.shape[1] and rec["n"] == 24
        assert (tmp_path / space / "spectrum.png").read_bytes()[:4] == b"\x89PNG"
    # default output folder of a run: RUN/spectrum_<space>
    assert main(["spectrum", str(rundir), "--quiet", "--features-dir",
                 str(tmp_path / "f")]) == 0
    assert (rundir / "spectrum_representation" / "spectrum.json").is_file()


def test_embeddings_files_still_work_and_need_out(tmp_path, capsys):
    z = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32)
    torch.save(torch.from_numpy(z), tmp_path / "z.pt")
    assert main(["spectrum", str(tmp_path / "z.pt"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    assert main(["spectrum", str(tmp_path / "z.pt"), "--quiet"]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
    assert main(["spectrum", str(tmp_path / "z.pt"), "--space", "embedding", "--out",
                 str(tmp_path / "o")]) == 2
    assert "drop --space" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["{official}"], "pass --dataset"),
    (["{official}", "--dataset", "cifar10"], "pass --data-dir"),
    (["{official}", "--dataset", "cifar10", "--data-dir", "/no/such"], "does not exist"),
    (["{empty}"], "holds no checkpoint_final.pt"),
    (["{run}", "--subvector", "600"], "--subvector 600 does not fit r"),
    (["{run}", "--l2", "0.1", "--select-l2"], "pass one"),
    (["{run}", "--backbone", "resnet50"], "backbone resnet50"),
    (["{run}", "--stem", "cifar"], "drop --stem or pass --stem imagenet"),
])
def test_bad_input_is_one_line_and_exit_2(run, tmp_path, capsys, argv, message):
    data, rundir = run
    files = official_files(rundir / "checkpoint_final.pt", tmp_path / "files")
    (tmp_path / "empty").mkdir()
    subs = {"official": str(files["final"]), "empty": str(tmp_path / "empty"),
            "run": str(rundir)}
    code, _, err = _probe([a.format(**subs) for a in argv] + ["--out", str(tmp_path / "o")],
                          capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_l2_grid_is_described_from_the_one_constant():
    """Defect: probe --help said 1e-4..1e-1 and "4 extra fits" while the grid was 1e-6..1e-1."""
    import re

    from dimcollapse.catalogue import PROBE_L2, PROBE_L2_GRID, PROBE_VAL_FRACTION
    from dimcollapse.cli import build_parser
    from dimcollapse.eval import DEFAULT_L2, DEFAULT_L2_GRID

    assert (DEFAULT_L2, DEFAULT_L2_GRID) == (PROBE_L2, PROBE_L2_GRID)
    sub = build_parser()._subparsers._group_actions[0].choices["probe"]
    text = " ".join(sub.format_help().split())
    listed = re.search(r"--select-l2 pick the L2 strength from (.+?) by top-1 on (\d+)% "
                       r"held-out train rows \((\d+) extra fits\)", text)
    assert listed, text
    assert tuple(float(v) for v in listed.group(1).split(", ")) == PROBE_L2_GRID
    assert int(listed.group(2)) == round(100 * PROBE_VAL_FRACTION)
    assert int(listed.group(3)) == len(PROBE_L2_GRID)
    assert f"default {PROBE_L2:.0e}".replace("e-02", "e-2") in text
    docs = Path(__file__).resolve().parents[2] / "docs"
    grid = ", ".join(f"{v:.0e}".replace("e-0", "e-") for v in PROBE_L2_GRID)
    assert f"DEFAULT_L2_GRID = ({grid})" in (docs / "evaluation.md").read_text()
    assert "1e-6 … 1e-1" in (docs / "commands.md").read_text()
