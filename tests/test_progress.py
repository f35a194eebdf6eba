"""Progress off a terminal: plain lines at a steady wall-clock interval (train, probe,
reproduce); a tqdm bar on a terminal; nothing when quiet."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from dimcollapse.progress import Progress, format_duration

sys.path.insert(0, str(Path(__file__).resolve().parent / "eval"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "train"))
from evalfakes import make_labelled_tree  # noqa: E402
from trainhelpers import make_tree, tiny_overrides  # noqa: E402

LINE = re.compile(r"^dimcollapse train: step (\d+)/(\d+) \(\d+%\), loss \d+\.\d{4}, lr \S+, "
                  r"[\d.]+ images/s(, ETA \d+s)?$")


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_lines_at_a_steady_interval_with_rate_and_eta():
    clock, out = Clock(), io.StringIO()
    p = Progress(100, prefix="x", unit="step", rate_unit="images", interval_s=10, stream=out,
                 clock=clock)
    assert p.mode == "lines"
    for _ in range(30):  # one step per second, 64 images each
        clock.t += 1.0
        p.update(1, items=64, loss=1.5)
    lines = out.getvalue().splitlines()
    assert lines == ["x: step 10/100 (10%), loss 1.5000, 64 images/s, ETA 1m30s",
                     "x: step 20/100 (20%), loss 1.5000, 64 images/s, ETA 1m20s",
                     "x: step 30/100 (30%), loss 1.5000, 64 images/s, ETA 1m10s"]


def test_resumed_eta_counts_this_process_only_and_quiet_and_tty():
    clock, out = Clock(), io.StringIO()
    p = Progress(100, prefix="x", initial=50, interval_s=5, stream=out, clock=clock)
    for _ in range(10):
        clock.t += 2.0
        p.update(1)
    assert out.getvalue().splitlines()[-1] == "x: step 59/100 (59%), 0.50 steps/s, ETA 1m22s"
    quiet = io.StringIO()
    q = Progress(10, prefix="x", quiet=True, interval_s=0, stream=quiet)
    q.update(5)
    assert quiet.getvalue() == "" and q.mode == "off"
    tty = Tty()
    b = Progress(10, prefix="x", interval_s=0, stream=tty)
    b.update(5, loss=0.25)
    b.close()
    assert b.mode == "bar" and "x: step" not in tty.getvalue() and "5/10" in tty.getvalue()
    assert format_duration(3725) == "1h02m" and format_duration(7.4) == "7s"


@pytest.mark.usefixtures("one_thread")
def test_train_prints_plain_lines_off_a_terminal(tmp_path, capsys):
    from dimcollapse.train import run_training

    data = make_tree(tmp_path / "data")
    over = tiny_overrides(data, tmp_path / "cache", **{"loop.max_steps": 4,
                                                       "loop.spectrum_every_steps": 0})
    run_training(tmp_path / "run", overrides=over, progress_interval_s=0.0)
    err = capsys.readouterr().err.splitlines()
    lines = [ln for ln in err if ln.startswith("dimcollapse train: step")]
    assert [LINE.match(ln).group(1) for ln in lines] == ["1", "2", "3"], err
    run_training(tmp_path / "run2", overrides=over, progress_interval_s=0.0, quiet=True)
    assert capsys.readouterr().err == ""


@pytest.mark.usefixtures("one_thread")
def test_probe_features_print_plain_lines(tmp_path, capsys):
    from dimcollapse.data import build_dataset
    from dimcollapse.eval.features import extract_features
    from dimcollapse.models import build_backbone

    data = make_labelled_tree(tmp_path / "data", classes=2, train_per_class=8)
    ds = build_dataset("imagefolder", str(data), "train", cache_dir=str(tmp_path / "c"),
                       progress=False)
    extract_features(build_backbone("resnet18"), ds, image_size=16, batch_size=4,
                     progress=True, progress_interval_s=0.0, desc="train features")
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "image" in ln]
    assert lines[0].startswith("dimcollapse: train features: image 4/16 (25%), ")
    assert [ln.split("image ")[1].split(" ")[0] for ln in lines] == ["4/16", "8/16", "12/16"]
    assert all("images/s" in ln and "ETA" in ln for ln in lines)


@pytest.mark.usefixtures("one_thread")
def test_reproduce_prints_plain_lines(tmp_path, capsys, monkeypatch):
    from dimcollapse.cli import main

    monkeypatch.setenv("DIMCOLLAPSE_PROGRESS_S", "0")
    data = make_labelled_tree(tmp_path / "data")
    code = main(["reproduce", "d0-sweep", "--d0-grid", "8", "--seeds", "1", "--data-dir",
                 str(data), "--cache-dir", str(tmp_path / "cache"), "--out",
                 str(tmp_path / "rep"), "--image-size", "16", "--batch-size", "16",
                 "--max-steps", "3", "--threads", "1", "--set", "loop.precision=\"fp32\"",
                 "--set", "loop.spectrum_every_steps=0"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "dimcollapse train: step 1/3 (33%)" in err and "dimcollapse train: step 2/3" in err
