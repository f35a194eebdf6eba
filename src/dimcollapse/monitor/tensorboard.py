"""Send collapse metrics and spectra to TensorBoard (`pip install 'dimcollapse[tensorboard]'`).

    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter("runs/x")
    log_metrics(writer, monitor.compute(), step)          # {"r": {"rankme": ...}} -> r/rankme
    log_spectrum_figure(writer, "spectrum/z", dimcollapse.measure(z), step)   # Fig 2 image

`log_metrics` takes either `CollapseMonitor.compute()`'s nested {name: {metric: value}} or a
flat record such as one line of metrics.jsonl ({"loss": ..., "rankme_z": ...}); every number
becomes one scalar (TensorBoard stores it as float32; NaN and inf too: a NaN loss is news), the
rest (None, e.g. alpha-ReQ when d < 13, and strings) is skipped. `TensorBoardLog` is what
`dimcollapse train --tensorboard` writes RUN/tensorboard/ with: the metrics.jsonl records, one
scalar per key at the record's "step".

torch and tensorboard are imported only when a writer is opened, so `dimcollapse.monitor`
stays importable without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from pathlib import Path
from typing import Any

from dimcollapse.errors import UserError

INSTALL_HINT = "pip install 'dimcollapse[tensorboard]' (or pip install tensorboard)"
RUN_SUBDIR = "tensorboard"  # `dimcollapse train --tensorboard` writes RUN/tensorboard/
STEP_KEY = "step"  # the metrics.jsonl key that is the x axis, not a scalar of its own


def summary_writer(log_dir: str | Path, **kwargs: Any) -> Any:
    """A `torch.utils.tensorboard.SummaryWriter` on log_dir, or a UserError saying how to get
    the tensorboard package (torch's writer needs it)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise UserError(f"TensorBoard logging needs the tensorboard package ({err}): "
                        f"{INSTALL_HINT}") from None
    return SummaryWriter(log_dir=str(log_dir), **kwargs)


def scalars(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """{tag: float} of the numbers in a flat or nested {name: {metric: value}} mapping;
    nested keys are joined with "/" (TensorBoard groups tags by their first part)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        tag = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(scalars(value, prefix=f"{tag}/"))
        elif isinstance(value, bool):
            out[tag] = float(value)
        elif isinstance(value, Real) or _is_scalar_array(value):
            out[tag] = float(value)
    return out


def log_metrics(writer: Any, metrics: Mapping[str, Any], step: int, *,
                prefix: str = "") -> dict[str, float]:
    """Write every number of `metrics` (flat, or CollapseMonitor.compute()'s nested
    dict) as a scalar at global step `step`; returns {tag: value} as written."""
    values = scalars(metrics, prefix=prefix)
    for tag, value in values.items():
        writer.add_scalar(tag, value, global_step=int(step))
    return values


def log_spectrum_figure(writer: Any, tag: str, spectrum: Any, step: int, **plot_kwargs: Any
                        ) -> None:
    """Draw `spectrum` (a `Spectrum`: log sigma_k against k, Jing et al. 2022 Fig 2) on a new
    off-screen figure and write it as image `tag` at `step`. plot_kwargs go to Spectrum.plot."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, nothing left open

    figure = Figure(figsize=(6.4, 4.4))
    spectrum.plot(figure.add_subplot(), **plot_kwargs)
    figure.tight_layout()
    writer.add_figure(tag, figure, global_step=int(step), close=False)


class TensorBoardLog:
    """The metrics.jsonl records as TensorBoard scalars in `log_dir` (the training loop's).

    start_step > 0 (a resumed run) purges the events at steps > start_step that an earlier,
    interrupted process wrote, as metrics.jsonl is truncated to the checkpoint's step.
    """

    def __init__(self, log_dir: str | Path, *, start_step: int = 0):
        purge = {"purge_step": int(start_step) + 1} if start_step else {}
        self.writer = summary_writer(log_dir, **purge)

    def write(self, record: Mapping[str, Any]) -> dict[str, float]:
        step = record[STEP_KEY]
        return log_metrics(self.writer, {k: v for k, v in record.items() if k != STEP_KEY},
                           step)

    def close(self) -> None:
        self.writer.close()


def _is_scalar_array(value: Any) -> bool:
    """A 0-d numpy array / torch tensor of a real dtype."""
    shape = getattr(value, "shape", None)
    dtype = str(getattr(value, "dtype", ""))
    return shape is not None and tuple(shape) == () and ("float" in dtype or "int" in dtype)
