"""Open a run folder or checkpoint for evaluation: `build_evaluator(options, path)`.

The one place that turns the shared evaluation flags (`dimcollapse.eval_options.EvalOptions`)
into an `Evaluator` and its output folder; used by `dimcollapse probe`, `spectrum` and `compare`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from dimcollapse.errors import UserError
from dimcollapse.eval.evaluate import FEATURES_DIR, Evaluator, progress_enabled
from dimcollapse.eval.target import data_spec, resolve_target
from dimcollapse.eval_options import EvalOptions


def build_evaluator(options: EvalOptions, path: str | os.PathLike, *,
                    out: str | os.PathLike | None = None, train_subset: int | None = None,
                    log: Callable[[str], None] | None = None
                    ) -> tuple[Evaluator, Path]:
    """(Evaluator, out folder) for the run/checkpoint `path`.

    out: results folder (default: the run folder, else the checkpoint's). Sets torch's CPU
    thread count when `options.threads` is given.
    """
    o = options
    if o.threads is not None:
        if o.threads < 1:
            raise UserError("--threads must be >= 1")
        torch.set_num_threads(o.threads)
    if o.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    target = resolve_target(path, backbone=o.backbone, stem=o.stem, allow_unsafe=o.unsafe_load)
    note = target.status_note()
    if log is not None and note:
        log(note)  # e.g. "RUN was interrupted at step N" (runstatus)
    spec = data_spec(target, dataset=o.dataset, data_dir=o.data_dir, image_size=o.image_size,
                     cache_dir=o.cache_dir, train_subset=train_subset, num_workers=o.workers)
    out = Path(out) if out else target.default_out
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: pass a folder")
    cache = None if o.no_feature_cache else Path(o.features_dir or out / FEATURES_DIR)
    ev = Evaluator(target, spec, cache_dir=cache, precision=o.feature_precision,
                   batch_size=o.batch_size, device=o.device,
                   progress=progress_enabled(o.quiet), log=log)
    return ev, out
