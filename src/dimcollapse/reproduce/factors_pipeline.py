"""`run_collapse_factors`: what decides whether r collapses without a projector (issue 9 §2).

    from dimcollapse.reproduce import Budget
    from dimcollapse.reproduce.factors_pipeline import run_collapse_factors
    run_collapse_factors(Budget("cpu", data_dir, max_steps=400), seeds=[0],
                         out_dir="results/cifar10-cpu/collapse-factors")

Every setting of `factors.collapse_settings` (the baseline once, then one factor at a time) is
trained for the no-projector and the 2-layer projector arms under the same budget, each a
`runner.Job` in DIR/runs/<setting>/<arm>/seed<k>: complete ones are reused, an interrupted one
resumes from its checkpoint, exactly as the tables of `reproduce`. Then one arm's features are
extracted in fp32 and bf16 (`precision`; DIR/precision_check.json, reused when its arm is
unchanged), and DIR/results.json / results.md / results.csv and one spectrum figure per factor
are written (`report.factors_report`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dimcollapse.catalogue import COLLAPSE_FACTOR_ARMS
from dimcollapse.errors import UserError
from dimcollapse.reproduce.arms import Arm
from dimcollapse.reproduce.budget import Budget
from dimcollapse.reproduce.factors import BASELINE, collapse_settings
from dimcollapse.reproduce.factors_results import THRESHOLDS, findings, setting_rows
from dimcollapse.reproduce.pipeline import (
    GITIGNORE,
    _load,
    _stderr,
    finish_results,
    schedule_text,
)
from dimcollapse.reproduce.records import ArmRecord
from dimcollapse.reproduce.runner import RUNS_DIR, Job, run_job

TARGET = "collapse-factors"
PRECISION_FILE = "precision_check.json"


def plan_factor_jobs(settings, arms: list[Arm], seeds: list[int], out_dir: Path) -> list[Job]:
    """Seeds outermost, then settings (baseline first), then arms: both arms of a setting run
    back to back, so an interrupted target still has complete pairs."""
    return [Job(arm, seed, Path(out_dir), group=s.key)
            for seed in seeds for s in settings for arm in arms]


def _precision(out: Path, job: Job, budget: Budget, record, log) -> dict[str, Any]:
    from dimcollapse.reproduce.precision import precision_check
    from dimcollapse.runinfo import write_json

    path = out / PRECISION_FILE
    ident = {"run_dir": job.rel_dir, "plan": record.plan}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if {k: old.get(k) for k in ident} == json.loads(json.dumps(ident)):
                return old
        except (OSError, json.JSONDecodeError):
            pass
    log(f"precision check: {job.rel_dir} in fp32 and bf16")
    t0 = time.perf_counter()
    res = precision_check(out / job.rel_dir, cache_dir=budget.cache_dir,
                          batch_size=budget.eval_batch_size, log=log)
    res = {**ident, "setting": job.group, "arm": job.arm.key, "seed": job.seed, **res,
           "wall_s": round(time.perf_counter() - t0, 2)}
    write_json(path, res)
    return res


def _brief(precision: dict | None) -> dict | None:
    """The precision check without its eigenvalue lists (those stay in PRECISION_FILE)."""
    if precision is None:
        return None
    out = {k: v for k, v in precision.items() if k not in ("plan", "difference_eigenvalues")}
    for name in ("fp32", "bf16"):
        out[name] = {k: v for k, v in precision[name].items() if k != "eigenvalues"}
    return {**out, "file": PRECISION_FILE}


def run_collapse_factors(budget: Budget, *, seeds: list[int], out_dir: str | os.PathLike,
                         grid: Mapping[str, Sequence[Any]] | None = None,
                         precision_check: bool = True, precision_arm: str = "none",
                         keep_features: bool = False, progress: bool = False,
                         quiet: bool = False, log: Callable[[str], None] = _stderr,
                         train_job: Callable | None = None) -> dict[str, Any]:
    """Train and measure every setting x arm x seed; write the results (see the module doc).

    grid: factor -> values (default: every factor's own values, `factors.FACTORS`).
    precision_check: extract the baseline's `precision_arm`, first seed, in fp32 and bf16.
    train_job: replaces `runner.run_job` (tests count its calls). Raises UserError for bad
    settings before anything is trained.
    """
    import torch

    from dimcollapse.build import check_buildable
    from dimcollapse.report.factors_report import draw_factor_spectra, write_factors_report
    from dimcollapse.runinfo import atomic_write_bytes, run_metadata

    if not seeds:
        raise UserError("--seeds must be at least 1")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: pass a folder")
    arms = [Arm(p) for p in COLLAPSE_FACTOR_ARMS]
    settings, table = collapse_settings(budget.config(arms[0], seeds[0]), grid)
    budgets = {s.key: s.budget(budget) for s in settings}
    for s in settings:  # every setting must build before hours of training start
        for arm in arms:
            check_buildable(budgets[s.key].config(arm, seeds[0]))
    jobs = plan_factor_jobs(settings, arms, seeds, out)
    (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    if not (out / ".gitignore").exists():
        atomic_write_bytes(out / ".gitignore", GITIGNORE.encode())
    meta = run_metadata()
    load_start, t0 = _load(), time.perf_counter()
    log(f"{TARGET}: {len(settings)} settings x {len(arms)} arms x {len(seeds)} seed(s) = "
        f"{len(jobs)} runs into {out} (load average {load_start:.2f})")
    run = train_job or run_job
    records: dict[tuple[str, str, int], ArmRecord] = {}
    reused = 0
    for i, job in enumerate(jobs, 1):
        group = job.group
        assert group is not None  # every job of this target belongs to a setting
        tag = f"[{i}/{len(jobs)}] {group}/{job.arm.key} seed {job.seed}"

        def job_log(m: str, tag: str = tag) -> None:
            log(f"{tag}: {m}")

        record, was_reused = run(job, budgets[group], progress=progress, quiet=quiet,
                                 keep_features=keep_features, log=job_log)
        records[(group, job.arm.key, job.seed)] = record
        reused += was_reused
        assert record.probe is not None  # the target always probes its runs
        log(f"{tag}: {'reused' if was_reused else 'done'}: top-1 {record.probe.top1:.2f}%, "
            f"collapsed dims r {record.spectrum_r.collapsed_dims}, z "
            f"{record.spectrum_z.collapsed_dims} ({record.wall_s.total:.0f} s)")
    precision = None
    if precision_check:
        pjob = next(j for j in jobs if j.group == BASELINE and j.arm.key == precision_arm)
        precision = _precision(out, pjob, budget, records[(BASELINE, precision_arm, pjob.seed)],
                               log)
    rows = setting_rows(settings, arms, records, seeds, out)
    base = records[(BASELINE, arms[0].key, seeds[0])]
    results: dict[str, Any] = {
        "kind": "dimcollapse-collapse-factors",
        "target": TARGET,
        "seeds": list(seeds),
        "arms": [a.describe() for a in arms],
        "budget": budget.describe(),
        "schedule": schedule_text(budget, arms[0], seeds[0], base),
        "thresholds": list(THRESHOLDS),
        "settings": [s.describe() for s in settings],
        "factors": table,
        "rows": rows,
        "precision_check": _brief(precision),
        "findings": findings(rows, settings, precision=precision),
        "total_jobs": len(jobs),
        "reused_arms": reused,
        "arm_wall_s": round(sum(r.wall_s.total for r in records.values()), 2),
        "threads": torch.get_num_threads(),
        "load_average": {"start": load_start},
        "metadata": meta,
    }
    results["figures"] = draw_factor_spectra(results, out)
    results["wall_s"] = round(time.perf_counter() - t0, 2)
    results["load_average"]["end"] = _load()
    return finish_results(results, out, write_factors_report, log)
