"""log_metrics / log_spectrum_figure write what the monitor computed, read back with
TensorBoard's EventAccumulator."""

import numpy as np
import pytest

import dimcollapse
from dimcollapse import CollapseMonitor
from dimcollapse.errors import UserError
from dimcollapse.monitor.tensorboard import (
    log_metrics,
    log_spectrum_figure,
    scalars,
    summary_writer,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _reload(folder):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_scalars_flatten_nested_and_skip_non_numbers():
    got = scalars({"z": {"rankme": 3.5, "alpha_req": None, "collapsed_dims": 2, "n": 64},
                   "loss": np.float64(0.25), "ok": True, "nan": float("nan"), "s": "x",
                   "t": np.array(7)}, prefix="collapse/")
    assert got == {"collapse/z/rankme": 3.5, "collapse/z/collapsed_dims": 2.0,
                   "collapse/z/n": 64.0, "collapse/loss": 0.25, "collapse/ok": 1.0,
                   "collapse/t": 7.0, "collapse/nan": pytest.approx(float("nan"), nan_ok=True)}


def test_without_tensorboard_the_error_says_how_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(UserError, match=r"pip install 'dimcollapse\[tensorboard\]'"):
        summary_writer(tmp_path)


def test_monitor_metrics_and_spectrum_figure_round_trip(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 16)) * np.exp(-0.5 * np.arange(16))
    monitor = CollapseMonitor(metrics=("rankme", "collapsed_dims", "normalized_std"))
    monitor.update("z", z)
    result = monitor.compute()
    with SummaryWriter(str(tmp_path)) as writer:
        written = log_metrics(writer, result, step=7)
        log_spectrum_figure(writer, "spectrum/z", dimcollapse.measure(z), step=7)
    acc = _reload(tmp_path)
    assert sorted(acc.Tags()["scalars"]) == ["z/collapsed_dims", "z/n", "z/normalized_std",
                                             "z/rankme"]
    for tag in written:
        (event,) = acc.Scalars(tag)
        metric = tag.split("/")[1]
        assert event.step == 7 and event.value == np.float32(result["z"][metric])
    (image,) = acc.Images("spectrum/z")
    assert image.step == 7 and image.width > 100 and image.height > 100
    assert image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
