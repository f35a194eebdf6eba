"""`CollapseMonitorCallback`: collapse metrics of a LightningModule's layers, logged through its
logger (`pip install 'dimcollapse[lightning]'`).

    from dimcollapse.monitor.lightning import CollapseMonitorCallback
    trainer = lightning.Trainer(callbacks=[CollapseMonitorCallback(
        {"r": "backbone.avgpool", "z": "projector"}, every_n_steps=100)])

Every `every_n_steps` optimizer steps the callback computes the `CollapseMonitor` metrics
(RankMe, alpha-ReQ, collapsed dims, ...) of the watched outputs over the last `window` training
batches and writes them as "collapse/<name>/<metric>" to the Trainer's loggers (`pl_module.logger`
and any others: TensorBoard, CSV, W&B, ...) with `logger.log_metrics`, as Lightning's own
LearningRateMonitor does, at the x-axis step that `self.log` values of the same batch get.
(Not through `pl_module.log`: Lightning forwards those only every `log_every_n_steps` and
then re-sends the last value at every later log step of the epoch, which would plot stale
numbers as new ones.) `callback.last` holds the latest values.

- `modules`: {name: module name in pl_module.named_modules()}, watched by forward hooks during
  the training batches only (added at on_train_batch_start, removed at its end: validation and
  prediction passes are never measured). Every forward call inside a training step is one
  update (two views through the projector pool both).
- `outputs`: {name: key} also takes the tensor training_step returns under `key` (its returned
  dict), for embeddings that are no module's output.
- Under DDP every rank feeds its own batches and `compute()` all-reduces the sums, so every
  rank logs the metrics of the global batch (rank 0's logger writes them); the callback adds no
  other communication and never touches the model's outputs or the RNG.
- Under DDP only rank 0 writes (the loggers' own rule); every rank computes, as a collective.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dimcollapse.errors import UserError
from dimcollapse.monitor import watch as watching
from dimcollapse.monitor.collapse_monitor import CollapseMonitor
from dimcollapse.monitor.tensorboard import scalars

INSTALL_HINT = "pip install 'dimcollapse[lightning]' (or pip install lightning)"

try:
    from lightning.pytorch import Callback
except ImportError:  # the older standalone package name exposes the same classes
    try:
        from pytorch_lightning import Callback  # type: ignore[assignment]
    except ImportError as err:
        raise UserError(f"CollapseMonitorCallback needs Lightning ({err}): {INSTALL_HINT}"
                        ) from None


class CollapseMonitorCallback(Callback):
    """Log collapse metrics of named module outputs every `every_n_steps` optimizer steps.

    Args:
        modules: {monitor name: module name of pl_module}, e.g. {"z": "projector"}. Outputs are
            (N, d) rows or (N, C, H, W) feature maps (average-pooled), as CollapseMonitor.
        outputs: {monitor name: key of the dict training_step returns}, e.g. {"z": "z"}.
        every_n_steps: log every k optimizer steps; None: Trainer(log_every_n_steps) (50).
        window: training batches pooled per result, the last ones before each logging step;
            None: all of the every_n_steps batches since the last result.
        metrics: CollapseMonitor metrics (default: DEFAULT_METRICS); "n" (rows) is added.
        prefix: logged names are f"{prefix}{name}/{metric}".
        **monitor_options: normalize, center, threshold, precision, device, raw_max_samples
            (CollapseMonitor's).
    Attributes:
        last: {logged name: value} of the latest result (the same numbers on every rank).
    """

    def __init__(self, modules: Mapping[str, str] | None = None, *,
                 outputs: Mapping[str, str] | None = None, every_n_steps: int | None = None,
                 window: int | None = None, metrics: Any = None, prefix: str = "collapse/",
                 **monitor_options: Any):
        if not modules and not outputs:
            raise UserError("CollapseMonitorCallback needs modules={name: module name} (e.g. "
                            '{"z": "projector"}) or outputs={name: key of training_step\'s '
                            "returned dict}")
        for what, value in (("every_n_steps", every_n_steps), ("window", window)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise UserError(f"CollapseMonitorCallback: {what}={value!r}; pass an integer "
                                ">= 1 or None")
        for option in ("every", "window"):
            if option in monitor_options:
                raise UserError(f"CollapseMonitorCallback: {option}= is the callback's own "
                                "schedule; use every_n_steps= and window=")
        self.modules = watching.watch_targets(modules) if modules else {}
        self.outputs = dict(outputs or {})
        self.every_n_steps, self.window, self.prefix = every_n_steps, window, prefix
        self.monitor = CollapseMonitor(metrics=metrics, **monitor_options)
        self.last: dict[str, float] = {}
        self._every = self._window = 0
        self._recording = False
        self._logged_step: int | None = None

    # -- schedule ----------------------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        every = self.every_n_steps or int(getattr(trainer, "log_every_n_steps", 0) or 50)
        for path in self.modules.values():
            watching.find_module(pl_module, path)  # a wrong name fails now, naming the modules
        self._every, self._window = every, min(self.window or every, every)
        self.monitor.reset()
        self._logged_step = None

    def _records(self, step: int) -> bool:
        """Is optimizer step `step` (1-based) among the `window` steps ending at a log step?"""
        return (-step) % self._every < self._window

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any,
                             batch_idx: int) -> None:
        self._recording = self._records(trainer.global_step + 1)
        self.monitor.unwatch()  # (hooks of a batch that never reached its end)
        if self._recording and self.modules:
            self.monitor.watch(pl_module, self.modules)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.monitor.unwatch()
        if self._recording and outputs is not None:  # None: training_step skipped the batch
            for name, key in self.outputs.items():
                self.monitor.update(name, _returned(outputs, key, name))
        self._recording = False
        step = trainer.global_step
        # (gradient accumulation: several batches end at one global_step; log it once)
        if step % self._every or step == self._logged_step or not self.monitor.ready():
            return
        self._logged_step = step
        self.last = scalars(self.monitor.compute(), prefix=self.prefix)  # a collective
        self.monitor.reset()
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(self.last, step=_log_step(trainer))

    def state_dict(self) -> dict[str, Any]:
        return {"last": dict(self.last)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last = dict(state_dict.get("last", {}))

    # -- never leave hooks behind --------------------------------------------------------------
    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self.monitor.unwatch()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.monitor.unwatch()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.monitor.unwatch()


def _log_step(trainer: Any) -> int:
    """The step `self.log` values of the current batch are written at (Lightning counts the
    batches that stepped before this one; LearningRateMonitor uses the same)."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    return int(getattr(loop, "_batches_that_stepped", trainer.global_step - 1))


def _returned(outputs: Any, key: str, name: str) -> Any:
    """outputs[key] of what training_step returned (a dict), or a UserError naming its keys."""
    if isinstance(outputs, Mapping) and key in outputs:
        return outputs[key]
    have = sorted(outputs) if isinstance(outputs, Mapping) else type(outputs).__name__
    raise UserError(f"CollapseMonitorCallback: outputs={{{name!r}: {key!r}}} but training_step "
                    f"returned {have}; return a dict with the {key!r} tensor (e.g. "
                    f"{{'loss': loss, {key!r}: z.detach()}})")
