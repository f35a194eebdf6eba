"""The spectrum figure and the spectrum.json + spectrum.png writer (report/spectrum_plot.py)."""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from dimcollapse.report.spectrum_plot import plot_spectra, write_spectrum_report
from dimcollapse.spectrum import SpectrumAccumulator


def _image(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 400
    return img


def test_plot_overlay_with_zero_eigenvalues(tmp_path):
    curves = {"projector": np.logspace(0, -3, 64),
              "no projector": np.concatenate([np.logspace(0, -8, 40), np.zeros(24)])}
    path = plot_spectra(curves, tmp_path / "sub" / "fig.png", title="overlay", threshold=1e-4)
    img = _image(path)
    assert img[..., :3].std() > 0.05  # not a blank canvas
    assert not list(tmp_path.glob("sub/.*tmp*"))  # the temporary file was renamed away
    with pytest.raises(ValueError):
        plot_spectra({}, tmp_path / "x.png")


def test_write_spectrum_report(tmp_path):
    rng = np.random.default_rng(60)
    acc = SpectrumAccumulator(16, normalize=True)
    acc.update(rng.standard_normal((200, 16)) * np.exp(-np.arange(16)))
    measured = acc.summary().with_source({"path": "x.npy"})
    json_path, png_path = write_spectrum_report(measured, tmp_path / "out",
                                                metadata={"git_sha": "abc"})
    summary = measured.to_dict()
    record = json.loads(json_path.read_text())
    assert record["metadata"] == {"git_sha": "abc"}
    assert record["source"] == {"path": "x.npy"}
    assert record["eigenvalues"] == summary["eigenvalues"]  # full float precision round-trip
    assert record["collapsed_dims"] == summary["collapsed_dims"]
    _image(png_path)
