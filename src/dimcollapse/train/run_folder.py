"""The run folder: what one pretraining run leaves on disk, and how a rerun finds its state.

    OUT/config.json          the resolved TrainConfig (load with dimcollapse.config.load_config)
    OUT/run.json             provenance (git sha, command line, versions, host), world size,
                             device, precision, steps, status, and one entry per (re)start
    OUT/metrics.jsonl        one JSON object per logged step (see dimcollapse.train.metrics)
    OUT/checkpoint_last.pt   latest state, rewritten atomically every --checkpoint-every steps
                             and when a run is stopped by SIGTERM/SIGINT
    OUT/checkpoint_final.pt  the state after the last step; replaces checkpoint_last.pt

Only the main process (rank 0) writes; the others construct a reader (`writer=False`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from dimcollapse.config import (
    RESUMABLE_FIELDS,
    TrainConfig,
    apply_overrides,
    config_diff,
    config_from_dict,
    config_to_dict,
    default_config,
    preset_config,
    resolve,
)
from dimcollapse.errors import UserError
from dimcollapse.runinfo import atomic_write_bytes, write_json
from dimcollapse.train.checkpoint import load_checkpoint

CONFIG = "config.json"
RUN = "run.json"
METRICS = "metrics.jsonl"
LAST = "checkpoint_last.pt"
FINAL = "checkpoint_final.pt"


class RunFolder:
    """Paths and rank-0 writes of a run folder."""

    def __init__(self, path: str | os.PathLike, *, writer: bool = True):
        self.path = Path(path)
        self.writer = writer

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def final(self) -> Path:
        return self.path / FINAL

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    def latest_checkpoint(self) -> Path | None:
        """checkpoint_final.pt if the run finished, else checkpoint_last.pt, else None."""
        for p in (self.final, self.last):
            if p.is_file():
                return p
        return None

    def create(self) -> None:
        if self.writer:
            if self.path.exists() and not self.path.is_dir():
                raise UserError(f"--out {self.path} is a file; pass a folder for the run")
            self.path.mkdir(parents=True, exist_ok=True)

    def write_config(self, cfg: TrainConfig) -> None:
        if self.writer:
            write_json(self.path / CONFIG, config_to_dict(cfg))

    def read_run(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / RUN).read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def update_run(self, **fields: Any) -> None:
        """Merge `fields` into run.json (atomic rewrite)."""
        if self.writer:
            info = self.read_run()
            info.update(fields)
            write_json(self.path / RUN, info)

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete records of metrics.jsonl (a torn last line is skipped)."""
        records = []
        with contextlib.suppress(FileNotFoundError), open(self.metrics) as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def truncate_metrics(self, step: int) -> None:
        """Keep only records with step <= `step`: a resumed run logs steps after it again."""
        if self.writer and self.metrics.exists():
            kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
            atomic_write_bytes(self.metrics, "".join(json.dumps(r) + "\n" for r in kept).encode())

    def open_metrics(self):
        """Append handle for metrics.jsonl (line-buffered), or None on non-writer ranks."""
        if not self.writer:
            return None
        return open(self.metrics, "a", buffering=1)


def plan_run(
    out_dir: str | os.PathLike,
    *,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    resume: str | os.PathLike | None = None,
) -> tuple[TrainConfig, Path | None]:
    """Decide the config of a run and the checkpoint it continues from.

    `resume`: None resumes automatically when `out_dir` holds a checkpoint; "auto" requires one;
    a path names a checkpoint file to continue from. When resuming, the checkpoint's config is the
    base and `overrides` may only change RESUMABLE_FIELDS (paths, device, logging cadence);
    anything else raises `UserError` naming the fields. Otherwise the config is the preset (or
    the paper defaults) with `overrides` applied. Returns (resolved config, checkpoint or None).
    """
    overrides = overrides or {}
    folder = RunFolder(out_dir, writer=False)
    if resume is None or resume == "auto":
        ckpt_path = folder.latest_checkpoint()
        if ckpt_path is None and resume == "auto":
            raise UserError(f"--resume: no checkpoint in {folder.path} (looked for {FINAL} and "
                            f"{LAST}); drop --resume to start a new run")
    else:
        ckpt_path = Path(resume)
    if ckpt_path is None:
        base = preset_config(preset) if preset else default_config()
        return resolve(apply_overrides(base, overrides)), None

    saved = resolve(config_from_dict(load_checkpoint(ckpt_path)["config"]))
    if preset is not None and preset != saved.preset:
        raise UserError(f"{ckpt_path} was trained with preset {saved.preset!r}, not {preset!r}; "
                        "use a new --out folder for a different recipe")
    wanted = resolve(apply_overrides(saved, overrides))
    clash = {k: v for k, v in config_diff(saved, wanted).items() if k not in RESUMABLE_FIELDS}
    if clash:
        parts = ", ".join(f"{k}={a!r} (asked {b!r})" for k, (a, b) in clash.items())
        raise UserError(f"{ckpt_path} was trained with {parts}; resuming cannot change these: "
                        "drop those flags or use a new --out folder")
    return wanted, ckpt_path
