"""The demo's image section: a brief DirectCLR and no-projector run, their spectra side by side.

`run_image_demo` trains the two arms under one small budget (the `cpu` preset, shortened) with
the reproduction's runner (so a rerun reuses finished runs), probes them on a subset of the
train split, measures their representation spectra on the test split, and writes
DEMO/images/images.json and DEMO/images/spectra.png. The demo report's image section reads
those files (`report.demo_report.image_section`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dimcollapse.errors import UserError
from dimcollapse.report.image_demo_plot import side_by_side_spectra
from dimcollapse.reproduce.arms import Arm, scaled_d0
from dimcollapse.reproduce.budget import Budget
from dimcollapse.reproduce.datasets import how_to_get
from dimcollapse.reproduce.runner import plan_jobs, run_job
from dimcollapse.runinfo import run_metadata, write_json

IMAGES_DIR = "images"  # DEMO/images/
SUMMARY = "images.json"
FIGURE = "spectra.png"
# A few minutes on a 2-core CPU for both runs (measured: see docs/reproduce.md).
DEFAULT_STEPS = 150
DEFAULT_TRAIN_SUBSET = 10_000
DEFAULT_PROBE_SUBSET = 10_000


def write_no_data(demo_dir: str | Path, reason: str) -> Path:
    """Record that the image section could not run (and how to get the data)."""
    path = Path(demo_dir) / IMAGES_DIR / SUMMARY
    write_json(path, {"status": "no-data", "reason": reason, "how_to_get": how_to_get()})
    return path


def run_image_demo(demo_dir: str | Path, data_dir: str | Path, *, steps: int = DEFAULT_STEPS,
                   batch_size: int | None = None, image_size: int | None = None,
                   train_subset: int | None = DEFAULT_TRAIN_SUBSET,
                   probe_subset: int | None = DEFAULT_PROBE_SUBSET, seed: int = 0,
                   progress: bool = False, quiet: bool = False,
                   log: Callable[[str], None] = lambda m: None
                   ) -> dict[str, Any]:
    """Train DirectCLR (d0 = the paper's fraction of r) and SimCLR without a projector, probe
    and measure both; write DEMO/images/{images.json, spectra.png}. Returns the summary."""
    # torch: `reproduce` imports without torch (plan, replot, results)
    from dimcollapse.data import build_dataset

    out = Path(demo_dir) / IMAGES_DIR
    n_train = len(build_dataset("cifar10", data_dir, "train", progress=progress).targets)
    budget = Budget("cpu", str(data_dir), max_steps=steps, batch_size=batch_size,
                    image_size=image_size,
                    train_subset=None if train_subset is None else min(train_subset, n_train),
                    probe_subset=None if probe_subset is None else min(probe_subset, n_train),
                    select_l2=False)
    dim = budget.representation_dim()
    arms = [Arm("directclr", scaled_d0(dim), scaled_d0(dim)), Arm("none")]
    t0 = time.perf_counter()
    records = []
    for job in plan_jobs(arms, [seed], out):
        log(f"{job.arm.label}: {steps} steps -> {job.run_dir}")
        rec, reused = run_job(job, budget, progress=progress, quiet=quiet, log=log)
        assert rec.probe is not None  # every arm is probed (runner.run_job)
        log(f"{job.arm.label}: {'reused, ' if reused else ''}top-1 {rec.probe.top1:.2f}%,"
            f" {rec.spectrum_r.collapsed_dims} collapsed dims of r")
        records.append(rec)
    summary = {"status": "complete", "budget": budget.describe(),
               "schedule": budget.config(arms[0], seed).loop.max_steps,
               "runs": [{k: d[k] for k in ("key", "label", "projector", "d0", "seed", "run_dir",
                                           "probe", "spectrum_r", "wall_s", "train")}
                        for d in (r.to_dict() for r in records)],
               "wall_s": round(time.perf_counter() - t0, 2), "metadata": run_metadata()}
    side_by_side_spectra(out, [(r.arm["label"], r.run_dir) for r in records], out / FIGURE)
    summary["figure"] = FIGURE
    write_json(out / SUMMARY, summary)
    return summary


def replot_images(demo_dir: str | os.PathLike) -> Path:
    """Redraw DEMO/images/spectra.png from images.json and the runs' spectrum.json (no
    training). Returns the PNG path."""
    out = Path(demo_dir) / IMAGES_DIR
    if not (out / SUMMARY).is_file():
        raise UserError(f"no {out / SUMMARY} to replot from: run `dimcollapse demo` first")
    runs = json.loads((out / SUMMARY).read_text())["runs"]
    return side_by_side_spectra(out, [(r["label"], r["run_dir"]) for r in runs], out / FIGURE)
