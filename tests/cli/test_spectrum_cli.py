"""`dimcollapse spectrum`: the files it writes, its flags, and every bad-input path (exit 2)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from dimcollapse.cli import main
from dimcollapse.spectrum import covariance_spectrum, rankme

KEYS = {"n", "dim", "normalize", "eigenvalues", "rankme", "alpha_req", "collapsed_dims",
        "alpha_req_r2", "threshold", "center", "ddof", "normalized_std", "metadata", "source",
        "precision", "raw_samples"}


@pytest.fixture
def emb(tmp_path):
    rng = np.random.default_rng(70)
    z = (rng.standard_normal((600, 24)) * np.exp(-0.4 * np.arange(24)) + 0.3).astype(np.float32)
    np.save(tmp_path / "emb.npy", z)
    return tmp_path / "emb.npy", z


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_json_and_png(emb, tmp_path, capsys):
    path, z = emb
    code, out, err = _run(["spectrum", str(path), "--out", str(tmp_path / "o"), "--quiet"],
                          capsys)
    assert code == 0 and out == "" and err == ""
    record = json.loads((tmp_path / "o" / "spectrum.json").read_text())
    assert KEYS <= set(record)
    assert record["n"] == 600 and record["dim"] == 24
    assert record["normalize"] is True and record["center"] is True and record["ddof"] == 0
    want = covariance_spectrum(z, normalize=True)
    assert np.abs(np.array(record["eigenvalues"]) - want).max() / want[0] < 1e-12
    assert record["rankme"] == pytest.approx(rankme(z), rel=1e-9)  # raw rows, as the authors
    assert record["source"]["format"] == "npy" and record["source"]["dtype"] == "float32"
    assert "git_sha" in record["metadata"]
    assert (tmp_path / "o" / "spectrum.png").read_bytes()[:4] == b"\x89PNG"


def test_flags_are_recorded(emb, tmp_path, capsys):
    path, z = emb
    code, out, _ = _run(["spectrum", str(path), "--out", str(tmp_path / "o"), "--no-normalize",
                         "--ddof", "1", "--precision", "float32", "--threshold", "0.01",
                         "--raw-samples", "100"], capsys)
    assert code == 0
    assert "emb.npy" in out and "collapsed" in out and "RankMe" in out
    r = json.loads((tmp_path / "o" / "spectrum.json").read_text())
    assert (r["normalize"], r["ddof"], r["precision"], r["threshold"]) == (False, 1, "float32",
                                                                           0.01)
    assert r["raw_samples"] == 100 and r["rankme"] == pytest.approx(rankme(z[:100]), rel=1e-9)
    want = covariance_spectrum(z, normalize=False, ddof=1)
    assert np.abs(np.array(r["eigenvalues"]) - want).max() / want[0] < 1e-6
    assert r["collapsed_dims"] == int(np.sum(want < 0.01 * want[0]))
    code, _, _ = _run(["spectrum", str(path), "--out", str(tmp_path / "p"), "--quiet",
                       "--raw-samples", "0"], capsys)
    r = json.loads((tmp_path / "p" / "spectrum.json").read_text())
    assert r["rankme"] is None and r["alpha_req"] is None


def test_pt_input(emb, tmp_path, capsys):
    _, z = emb
    torch.save(torch.from_numpy(z), tmp_path / "emb.pt")
    code, _, _ = _run(["spectrum", str(tmp_path / "emb.pt"), "--out", str(tmp_path / "o"),
                       "--quiet"], capsys)
    assert code == 0
    r = json.loads((tmp_path / "o" / "spectrum.json").read_text())
    assert r["source"]["format"] == "pt" and r["n"] == 600


def _bad_files(tmp_path):
    np.save(tmp_path / "three.npy", np.zeros((5, 2, 2), dtype=np.float32))
    np.save(tmp_path / "single.npy", np.zeros((1, 4), dtype=np.float32))
    z = np.ones((50, 3), dtype=np.float32)
    z[[4, 9], 0] = np.nan
    z[20, 2] = np.inf
    np.save(tmp_path / "nan.npy", z)
    (tmp_path / "junk.npy").write_bytes(b"\x00garbage" * 20)
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 20)
    return {
        "missing.npy": ["no such file", "missing.npy"],
        "three.npy": ["(5, 2, 2)", "2-D"],
        "single.npy": ["N = 1", "at least 2 rows"],
        "nan.npy": ["3 of 50 rows", "NaN or Inf", "row 4"],
        "junk.npy": ["cannot read", "junk.npy"],
        "junk.pt": ["junk.pt", "read", "torch.save"],
    }


def test_every_error_path_is_one_line_exit_2(tmp_path, capsys):
    for name, words in _bad_files(tmp_path).items():
        code, out, err = _run(["spectrum", str(tmp_path / name), "--out",
                               str(tmp_path / "o")], capsys)
        assert code == 2, name
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("dimcollapse spectrum: error: ")
        for w in words:
            assert w in lines[0], (name, lines[0])
    assert not (tmp_path / "o" / "spectrum.json").exists()


def test_console_entry_prints_no_traceback(tmp_path):
    _bad_files(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "dimcollapse", "spectrum",
                           str(tmp_path / "nan.npy"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "3 of 50 rows" in proc.stderr


def test_bad_flag_values_exit_2(emb, tmp_path, capsys):
    path, _ = emb
    for flags in (["--threshold", "2"], ["--raw-samples", "-1"], ["--chunk-rows", "0"],
                  ["--ddof", "3"]):
        with pytest.raises(SystemExit) as info:
            main(["spectrum", str(path), "--out", str(tmp_path / "o"), *flags])
        assert info.value.code == 2
        assert flags[0] in capsys.readouterr().err


def test_help_states_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["spectrum", "--help"])
    text = capsys.readouterr().out
    for phrase in ("--no-normalize", "default: normalize", "--ddof", "--precision",
                   "--threshold", "25600", "spectrum.json", "spectrum.png"):
        assert phrase in text, phrase


def test_fewer_rows_than_dims_is_not_reported_as_collapse(tmp_path, capsys):
    """Defect: 5 x 64 rows printed "60 of 64 dims collapsed"; at most 4 eigenvalues can be > 0."""
    rng = np.random.default_rng(3)
    np.save(tmp_path / "few.npy", rng.standard_normal((5, 64)))
    assert main(["spectrum", str(tmp_path / "few.npy"), "--out", str(tmp_path / "o")]) == 0
    line = capsys.readouterr().out
    assert "0 of the 4 dims 5 rows can span collapsed" in line
    assert "the other 60 are unmeasured, not collapsed" in line
    s = json.loads((tmp_path / "o" / "spectrum.json").read_text())
    assert (s["max_rank"], s["unmeasured_dims"], s["collapsed_dims"]) == (4, 60, 0)
    assert sum(v > 1e-12 for v in s["eigenvalues"]) == 4  # the sample's rank, as computed


def test_enough_rows_count_every_dim(tmp_path, capsys):
    x = np.random.default_rng(4).standard_normal((400, 8)) * np.logspace(0, -4, 8)
    np.save(tmp_path / "e.npy", x)
    assert main(["spectrum", str(tmp_path / "e.npy"), "--out", str(tmp_path / "o"),
                 "--no-normalize"]) == 0
    assert "of 8 dims collapsed" in capsys.readouterr().out
    s = json.loads((tmp_path / "o" / "spectrum.json").read_text())
    ev = np.asarray(s["eigenvalues"])
    assert s["unmeasured_dims"] == 0 and s["collapsed_dims"] == int((ev < 1e-4 * ev[0]).sum())


@pytest.mark.parametrize("api", ["covariance_spectrum", "rankme", "accumulator", "torch"])
def test_library_paths_give_the_clis_clear_error_on_nan(api):
    """Defect: the Python functions raised numpy's LinAlgError("Eigenvalues did not converge")."""
    from dimcollapse.errors import UserError
    from dimcollapse.spectrum import SpectrumAccumulator

    x = np.random.default_rng(5).standard_normal((50, 6))
    x[7, 2] = np.nan
    with pytest.raises(UserError, match="not finite: the rows hold NaN or Inf values"):
        if api == "covariance_spectrum":
            covariance_spectrum(x, normalize=False)
        elif api == "rankme":
            rankme(x)
        else:
            acc = SpectrumAccumulator(6, normalize=True)
            acc.update(torch.from_numpy(x) if api == "torch" else x)
            acc.summary()
