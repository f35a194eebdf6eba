"""`dimcollapse spectrum RUN --lidar-views Q` equals `spectrum.lidar.lidar` on the same views made
and embedded one image at a time; the result line carries the verdict and the effective rank."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from evalfakes import make_labelled_tree, tiny_model, train_tiny, tree_stats  # noqa: E402

from dimcollapse.cli import main  # noqa: E402
from dimcollapse.spectrum.lidar import lidar  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("lidarcli")
    data = make_labelled_tree(base / "data")
    torch.set_num_threads(1)
    return data, train_tiny(base / "run", data, base / "cache", **{"model.projector": "mlp"})


def _slow_views_embedded(ckpt_path: Path, data_dir: Path, indices, q: int, seed: int,
                         projector: bool) -> np.ndarray:
    """(n, q, d): each test PNG decoded with PIL (sorted class/file order), normalised with the
    tree's train statistics (rounded to 4 decimals, as `data.identify`), view j = the cifar
    preset's view j % 2 at step j // 2, each view alone through the eval-mode fp32 model."""
    from dimcollapse.views import build_views

    bb, pj = tiny_model(ckpt_path, projector=projector)
    mean, std = tree_stats(data_dir)
    files = sorted((data_dir / "test").glob("*/*"))
    views = build_views("cifar", 16)
    out = []
    with torch.no_grad():
        for i in indices:
            arr = np.asarray(Image.open(files[i]).convert("RGB"), dtype=np.uint8)
            x = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255.0
            row = []
            for j in range(q):
                v = views.apply(x, torch.tensor([i]), seed=seed, step=j // 2, view=j % 2,
                                mean=mean, std=std)
                e = bb(v)
                row.append((pj(e) if pj is not None else e)[0].double().numpy())
            out.append(np.stack(row))
    return np.stack(out)


@pytest.mark.parametrize("space, q, seed", [("representation", 3, 0), ("embedding", 4, 5)])
def test_lidar_of_a_run_equals_the_slow_path(run, tmp_path, capsys, space, q, seed):
    from dimcollapse.data.hashing import permutation
    from dimcollapse.eval.lidar_views import LIDAR_DOMAIN

    data, rundir = run
    out = tmp_path / "o"
    code = main(["spectrum", str(rundir), "--space", space, "--feature-precision", "fp32",
                 "--features-dir", str(tmp_path / "f"), "--out", str(out), "--threads", "1",
                 "--lidar-views", str(q), "--lidar-samples", "10", "--lidar-seed", str(seed)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rec = json.loads((out / "lidar.json").read_text())
    # 10 of the 24 test images, a seeded draw (not the first 10: those are 2 classes)
    want_idx = sorted(permutation(24, LIDAR_DOMAIN, seed)[:10].tolist())
    assert rec["sample_indices"] == want_idx and want_idx != list(range(10))
    views = _slow_views_embedded(rundir / "checkpoint_final.pt", data, want_idx, q, seed,
                                 projector=space == "embedding")
    assert views.shape == (10, q, 512 if space == "representation" else 32)
    assert np.abs(views[:, 0] - views[:, 2]).max() > 1e-3  # the views do differ
    assert rec["lidar"] == pytest.approx(lidar(views), rel=1e-4)
    assert (rec["n"], rec["q"], rec["dim"], rec["space"], rec["seed"]) == \
        (10, q, views.shape[2], space, seed)
    assert (rec["delta"], rec["eps"], rec["views"]) == (1e-4, 1e-8, "cifar")
    assert rec["views_from"] == "checkpoint config" and "metadata" in rec
    # a different seed draws other samples and views, so another value
    assert lidar(views) != pytest.approx(lidar(_slow_views_embedded(
        rundir / "checkpoint_final.pt", data, want_idx, q, seed + 1,
        projector=space == "embedding")), rel=1e-6)
    line = captured.out.strip()
    assert len(line.splitlines()) == 1
    assert f"LiDAR {rec['lidar']:.1f} (q={q})" in line
    spec = json.loads((out / "spectrum.json").read_text())
    assert f"effective rank {spec['effective_rank']:.1f}, collapse: {spec['collapse']}" in line
    assert "lidar" not in spec  # LiDAR lives in lidar.json; spectrum.json keys are unchanged


def test_without_the_flag_no_lidar_and_bad_lidar_flags_exit_2(run, tmp_path, capsys):
    _, rundir = run
    assert main(["spectrum", str(rundir), "--features-dir", str(tmp_path / "f"), "--out",
                 str(tmp_path / "o"), "--quiet", "--threads", "1"]) == 0
    assert not (tmp_path / "o" / "lidar.json").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["spectrum", str(rundir), "--lidar-views", "1"])
    assert e.value.code == 2 and "at least 2 views" in capsys.readouterr().err
    np.save(tmp_path / "z.npy", np.random.default_rng(0).standard_normal((20, 4)))
    assert main(["spectrum", str(tmp_path / "z.npy"), "--out", str(tmp_path / "e"),
                 "--lidar-views", "4"]) == 2
    assert "needs images to augment" in capsys.readouterr().err


def test_result_line_of_an_embeddings_file_has_the_verdict(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "low.npy", rng.standard_normal((200, 2)) @ rng.standard_normal((2, 6)))
    assert main(["spectrum", str(tmp_path / "low.npy"), "--out", str(tmp_path / "o")]) == 0
    line = capsys.readouterr().out.strip()
    rec = json.loads((tmp_path / "o" / "spectrum.json").read_text())
    assert rec["collapse"] == "dimensional" and rec["collapsed_dims"] == 4
    assert len(line.splitlines()) == 1
    assert f"effective rank {rec['effective_rank']:.1f}, collapse: dimensional -> " in line
