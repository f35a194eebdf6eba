"""The pretraining loop: build from a config, run the steps, log, checkpoint, resume, stop.

`run_training(out_dir, preset=..., overrides=..., resume=...)` is what `dimcollapse train`
calls; `train(cfg, out_dir)` runs an already resolved config. Under `torchrun` every process runs
the same code: torch.distributed starts from the environment, each rank takes its contiguous
chunk of every global batch, gradients are averaged by DDP, and only rank 0 writes files.

Resume exactness: batches and views are a pure function of (seed, step) and the stochastic
projectors of (seed, step), so restoring weights, optimizer state, loss scaler and step makes
the continued run take exactly the steps the uninterrupted one would (bit-exact on CPU).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dimcollapse import build, distributed
from dimcollapse.config import TrainConfig, config_to_dict, resolve
from dimcollapse.devices import resolve_device, resolve_precision
from dimcollapse.models import out_dim_of
from dimcollapse.optim import set_lr
from dimcollapse.progress import Progress
from dimcollapse.runinfo import run_metadata
from dimcollapse.runstatus import one_line, process_fields, refresh_status, utc_now
from dimcollapse.train.checkpoint import capture_rng, load_checkpoint, save_checkpoint
from dimcollapse.train.hooks import SpectrumHook, default_window_steps
from dimcollapse.train.metrics import IntervalMeter
from dimcollapse.train.parts import assemble
from dimcollapse.train.probe_set import build_probe_set
from dimcollapse.train.run_folder import RunFolder, plan_run
from dimcollapse.train.signals import StopRequest
from dimcollapse.train.step import apply_update, forward_backward


class TrainingFailed(Exception):
    """A run stopped abnormally; the message is one line saying what happened and what to do."""


class LossNotFinite(TrainingFailed):
    """The loss became NaN or Inf; no checkpoint was written for that step."""


class PeerLost(TrainingFailed):
    """Another process of a distributed run died or stopped answering."""


@dataclass
class TrainResult:
    """How a call to `train` ended: status complete | interrupted | already-complete."""

    status: str
    step: int
    total_steps: int
    run_dir: Path
    checkpoint: Path | None
    signum: int | None = None
    last_record: dict[str, Any] = field(default_factory=dict)


def run_training(out_dir, *, preset: str | None = None, overrides: dict | None = None,
                 resume=None, quiet: bool = False,
                 progress_interval_s: float | None = None) -> TrainResult:
    """Plan the run (preset + overrides, or resume from the folder's checkpoint) and train."""
    cfg, ckpt = plan_run(out_dir, preset=preset, overrides=overrides, resume=resume)
    return train(cfg, out_dir, checkpoint=ckpt, quiet=quiet,
                 progress_interval_s=progress_interval_s)


def train(cfg: TrainConfig, out_dir, *, checkpoint=None, quiet: bool = False,
          progress_interval_s: float | None = None) -> TrainResult:
    """Pretrain with `cfg`, writing the run folder `out_dir`; continue from `checkpoint` if given.

    Progress goes to stderr: a tqdm bar on a terminal, else a plain line every
    `progress_interval_s` seconds (default `progress.DEFAULT_INTERVAL_S`); none when `quiet`.
    Starts (and afterwards stops) torch.distributed from torchrun's environment unless a
    process group already exists. Raises LossNotFinite, PeerLost, or UserError for bad input.
    """
    owns_group = not torch.distributed.is_initialized()
    info = distributed.init_from_env()
    try:
        run = _Run(resolve(cfg), Path(out_dir), info, quiet)
        run.progress_interval_s = progress_interval_s
        return run.execute(checkpoint)
    except RuntimeError as err:
        if info.world_size > 1 and _is_comm_error(err):
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else repr(err)
            raise PeerLost(f"rank {info.rank}: another process of this {info.world_size}-process "
                           f"run died or stopped answering ({first}); see its log, then rerun "
                           "the same command to resume from the last checkpoint") from err
        raise
    finally:
        if owns_group:
            distributed.shutdown()


def _is_comm_error(err: BaseException) -> bool:
    if isinstance(err, getattr(torch.distributed, "DistError", ())):
        return True
    text = str(err).lower()
    return any(w in text for w in ("gloo", "nccl", "connection", "timed out", "timeout", "peer"))


class _Run:
    """State of one `train` call (built objects, run folder, meters)."""

    def __init__(self, cfg: TrainConfig, out_dir: Path, info, quiet: bool):
        self.cfg, self.info = cfg, info
        self.device = resolve_device(cfg.loop.device, info.device)
        self.precision = resolve_precision(cfg.loop.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes; CPU runs stay bit-exact
        if cfg.loop.threads is not None:
            torch.set_num_threads(cfg.loop.threads)
        self.folder = RunFolder(out_dir, writer=info.is_main)
        self.quiet = quiet
        self.show_bar = not quiet and info.is_main and sys.stderr.isatty()
        self.progress_interval_s: float | None = None
        # JSON round trip: plain str/int values only (torch.__version__ is a str subclass that
        # torch.load(weights_only=True) refuses to unpickle).
        self.metadata = json.loads(json.dumps(run_metadata()))

    # -- setup -----------------------------------------------------------------------------
    def execute(self, checkpoint) -> TrainResult:
        cfg, info = self.cfg, self.info
        ckpt = load_checkpoint(checkpoint) if checkpoint is not None else None
        start = int(ckpt["step"]) if ckpt else 0
        # A node whose --out is not the folder rank 0 writes (not shared) would start from
        # step 0 while rank 0 resumes: say so on every rank instead of training out of step.
        distributed.check_same_on_all_ranks(
            start, what="the step to start from (the checkpoint found in --out)",
            fix="--out must be one folder that every node sees (a shared filesystem), so "
                "that all ranks resume from the same checkpoint")
        if ckpt and start >= int(ckpt.get("total_steps") or start + 1):  # finished: no data needed
            self._say(f"run in {self.folder.path} is already complete ({start} steps)")
            return TrainResult("already-complete", start, start, self.folder.path,
                               Path(checkpoint))
        dataset = build.build_train_dataset(cfg, progress=self.show_bar)
        self.batches = build.build_batches(cfg, dataset, rank=info.rank,
                                           world_size=info.world_size, device=self.device,
                                           start_step=start)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.total, self.warmup = build.schedule_steps(cfg, self.steps_per_epoch)
        if start >= self.total:
            self._say(f"run in {self.folder.path} is already complete ({start} steps)")
            return TrainResult("already-complete", start, self.total, self.folder.path,
                               Path(checkpoint))
        self._build_model(len(dataset.classes), ckpt)
        self.hook.probe = build_probe_set(cfg, dataset, device=self.device, rank=info.rank,
                                          world_size=info.world_size, progress=self.show_bar)
        if self.hook.probe is not None and self.hook.probe.note:
            self._say(self.hook.probe.note)
        self.folder.create()
        self.folder.write_config(cfg)
        self.folder.truncate_metrics(start)
        previous = {}
        if ckpt:  # a stale "running" (killed process) reads as "interrupted" from here on
            previous = refresh_status(self.folder.path) if info.is_main else self.folder.read_run()
        starts = previous.get("starts", [])
        starts.append({"step": start, "utc": self.metadata["utc"],
                       "command": self.metadata["command"],
                       "previous_status": previous.get("status")})
        if ckpt:  # say it, as `reproduce` does: a rerun is not a fresh start
            was = previous.get("status")
            self._say(f"resuming from {checkpoint} at step {start}"
                      + (f" (the previous run is {was})" if was else ""))
        self.folder.update_run(**{**self.metadata, **process_fields()}, status="running",
                               error=None, checkpoint_step=start if ckpt else None,
                               world_size=info.world_size,
                               device=str(self.device), precision=self.precision.name,
                               total_steps=self.total, warmup_steps=self.warmup,
                               steps_per_epoch=self.steps_per_epoch, train_images=len(dataset),
                               num_classes=len(dataset.classes), starts=starts,
                               dataset=dataset.name, data_note=dataset.note,
                               normalization={"mean": list(dataset.mean),
                                              "std": list(dataset.std)})
        if dataset.note:
            self._say(dataset.note)
        self._say(f"{cfg.model.backbone}/{cfg.model.projector} on {dataset.name} "
                  f"({len(dataset)} images): steps {start}->{self.total} of "
                  f"{cfg.loop.batch_size} pairs, {cfg.optim.name} lr {cfg.optim.lr:g}, "
                  f"{self.precision.name} on {self.device}, {info.world_size} process(es); "
                  f"run folder {self.folder.path}")
        try:
            return self._loop(start)
        except BaseException as err:
            self._record_failure(err)
            raise

    def _record_failure(self, err: BaseException) -> None:
        """run.json says how the run ended when the process can still say it."""
        status = self.folder.read_run().get("status")
        if status != "running":  # diverged / interrupted were recorded where they happened
            return
        if isinstance(err, KeyboardInterrupt):
            self.folder.update_run(status="interrupted", error="KeyboardInterrupt",
                                   ended_utc=utc_now())
        else:
            self.folder.update_run(status="failed", error=one_line(err), ended_utc=utc_now())

    def _build_model(self, num_classes: int, ckpt: dict | None) -> None:
        cfg, loop = self.cfg, self.cfg.loop
        self.parts = assemble(cfg, num_classes=num_classes, device=self.device,
                              precision=self.precision, world_size=self.info.world_size,
                              ckpt=ckpt)
        self.schedule = build.build_schedule(cfg, total_steps=self.total,
                                             warmup_steps=self.warmup)
        window = loop.spectrum_window_steps or default_window_steps(
            out_dim_of(self.parts.encoder.backbone), loop.batch_size,
            max(loop.spectrum_every_steps, 1))
        self.hook = SpectrumHook(every_steps=loop.spectrum_every_steps, window_steps=window,
                                 total_steps=self.total, device=self.device)

    # -- the steps -------------------------------------------------------------------------
    def _loop(self, start: int) -> TrainResult:
        loop, parts = self.cfg.loop, self.parts
        meter, record, t0 = IntervalMeter(), {}, time.perf_counter()
        bar = Progress(self.total, initial=start, prefix="dimcollapse train", unit="step",
                       rate_unit="images", quiet=self.quiet or not self.info.is_main,
                       interval_s=self.progress_interval_s)
        log = self.folder.open_metrics()
        board = self._tensorboard(start) if log is not None else None  # rank 0, as the log
        batches = iter(self.batches)
        if start == 0 and self.hook.probe is not None:  # the curve's first point: the init
            initial = self.hook.probe_summary(parts.model.encoder)
            if log is not None:
                log.write(_json_line({"step": 0, "epoch": 0.0, **initial}))
        try:
            with StopRequest() as stop:
                for step in range(start, self.total):
                    batch = next(batches)
                    lr = self.schedule(step)
                    set_lr(parts.optimizer, lr)
                    parts.encoder.set_step(step)
                    stats, r1, z1 = forward_backward(
                        parts.ddp, batch.view1, batch.view2, batch.target,
                        loss_fn=parts.loss_fn, precision=self.precision,
                        optimizer=parts.optimizer, scaler=parts.scaler,
                        stop_requested=stop.requested, channels_last=loop.channels_last)
                    done = step + 1
                    if not stats.finite:
                        self._diverged(done, stats.loss, lr, batch)
                    apply_update(parts.optimizer, parts.scaler)
                    meter.add(loss=stats.loss, probe_loss=stats.probe_loss,
                              correct=stats.correct, count=stats.count, images=int(stats.count))
                    if self.hook.in_window(done):
                        self.hook.update(r1, z1)
                    spectrum = {}
                    if self.hook.is_measurement(done):
                        spectrum = self.hook.summary() | self.hook.probe_summary(
                            parts.model.encoder)
                    if done % loop.log_every_steps == 0 or done == self.total or spectrum:
                        record = meter.record(step=done, steps_per_epoch=self.steps_per_epoch,
                                              loss=stats.loss, lr=lr,
                                              time_s=time.perf_counter() - t0) | spectrum
                        if log is not None:
                            log.write(_json_line(record))
                        if board is not None:
                            board.write(record)
                        meter = IntervalMeter()
                    bar.update(1, items=int(stats.count),
                               loss=float(stats.loss), lr=f"{lr:.3g}")
                    if stats.stop:
                        path = self._checkpoint(done, self.folder.last)
                        self.folder.update_run(status="interrupted", step=done)
                        self._say(f"stopped by signal at step {done}; wrote {path}; rerun the "
                                  "same command to resume")
                        return TrainResult("interrupted", done, self.total, self.folder.path,
                                           path, stop.signum, record)
                    every = loop.checkpoint_every_steps
                    if every and done % every == 0 and done < self.total:
                        self._checkpoint(done, self.folder.last)
        finally:
            bar.close()
            if log is not None:
                log.close()
            if board is not None:
                board.close()
        path = self._checkpoint(self.total, self.folder.final)
        if self.info.is_main and self.folder.last.exists():
            self.folder.last.unlink()
        self.folder.update_run(status="complete", step=self.total, final=record,
                               wall_s=round(time.perf_counter() - t0, 2))
        self._say(f"done: step {self.total}, loss {record.get('loss', float('nan')):.4f}, "
                  f"probe_acc {record.get('probe_acc', float('nan')):.3f}; wrote {path}")
        return TrainResult("complete", self.total, self.total, self.folder.path, path,
                           None, record)

    def _tensorboard(self, start: int):
        """RUN/tensorboard/ events of the metrics.jsonl records (--tensorboard), or None."""
        if not self.cfg.loop.tensorboard:
            return None
        from dimcollapse.monitor.tensorboard import RUN_SUBDIR, TensorBoardLog

        return TensorBoardLog(self.folder.path / RUN_SUBDIR, start_step=start)

    def _checkpoint(self, step: int, path: Path) -> Path:
        if self.info.is_main:
            save_checkpoint(path, {
                **self.parts.state(),
                "step": step,
                "total_steps": self.total,
                "config": config_to_dict(self.cfg),
                "rng": capture_rng(),
                "git_sha": self.metadata["git_sha"],
                "metadata": self.metadata,
            })
            self.folder.update_run(checkpoint_step=step, heartbeat_utc=utc_now())
        distributed.barrier()
        return path

    def _diverged(self, step: int, loss: float, lr: float, batch) -> None:
        good = self.folder.latest_checkpoint()
        where = (f"the last good checkpoint is {good}" if good is not None
                 else "no checkpoint was written yet")
        self.folder.update_run(status="diverged", step=step)
        inputs_ok = all(bool(torch.isfinite(v).all()) for v in (batch.view1, batch.view2))
        if not inputs_ok:  # not a divergence: say so rather than blame the learning rate
            raise LossNotFinite(f"the augmented views of step {step} contain NaN/Inf (a bug in "
                                f"the augmentations or bad pixel data, please report it); "
                                f"stopped without saving, {where}")
        raise LossNotFinite(f"loss is {loss} at step {step} (lr {lr:.4g}); stopped without "
                            f"saving, {where}; try a lower --lr, a longer warm-up or "
                            "--precision fp32 in a new --out folder")

    def _say(self, message: str) -> None:
        if self.info.is_main and not self.quiet:
            print(f"dimcollapse train: {message}", file=sys.stderr, flush=True)


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"
