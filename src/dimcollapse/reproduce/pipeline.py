"""`run_reproduction`: every arm x seed under one budget, then results.json/md/csv and figures.

    from dimcollapse.reproduce import Budget, run_reproduction
    results = run_reproduction("table1", Budget("cpu", data_dir="../shared/datasets/cifar10"),
                               seeds=[0, 1], out_dir="results/cifar10-cpu")
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dimcollapse.errors import UserError
from dimcollapse.report.reproduce_figures import draw_all
from dimcollapse.report.reproduce_report import write_results_report
from dimcollapse.reproduce.arms import TABLE_TITLES, arms_for, tables_of
from dimcollapse.reproduce.budget import Budget
from dimcollapse.reproduce.records import ArmRecord
from dimcollapse.reproduce.results import aggregate, findings_by_table
from dimcollapse.reproduce.runner import RUNS_DIR, plan_jobs, run_job
from dimcollapse.runinfo import atomic_write_bytes, run_metadata, write_json

RESULTS_FILE = "results.json"
GITIGNORE = "# checkpoints and feature caches are not results\nruns/**/*.pt\nruns/**/features/\n"


def _stderr(msg: str) -> None:
    print(f"dimcollapse reproduce: {msg}", file=sys.stderr, flush=True)


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def schedule_text(budget: Budget, arm, seed: int, record: ArmRecord | None) -> str:
    """One line describing the shared training recipe (from the resolved config)."""
    cfg = budget.config(arm, seed)
    m, d, o, lp = cfg.model, cfg.data, cfg.optim, cfg.loop
    length = (f"{lp.max_steps} steps" if lp.max_steps is not None else f"{lp.epochs} epochs")
    spe = None if record is None else record.train.steps_per_epoch
    if record is not None and spe:
        t = record.train
        length += (f" ({t.steps} steps = {t.steps / spe:.2f} epochs of "
                   f"{t.train_images} images)")
    subset = f", training subset {d.train_subset} images" if d.train_subset else ""
    return (f"preset {budget.preset}: {d.dataset}, {m.backbone} ({m.stem} stem), {d.image_size} "
            f"px, {cfg.views.preset} views, batch {lp.batch_size} pairs, {length}{subset}, "
            f"{o.name} lr {o.lr:g}, loss {cfg.loss.name} (temperature {cfg.loss.temperature:g}), "
            f"precision {lp.precision}")


def run_reproduction(target: str, budget: Budget, *, seeds: list[int],
                     out_dir: str | os.PathLike, d0: int | None = None,
                     d0_grid: list[int] | None = None, keep_features: bool = False,
                     progress: bool = False, quiet: bool = False,
                     log: Callable[[str], None] = _stderr) -> dict[str, Any]:
    """Train, probe and measure every arm of `target` for every seed; write the results.

    Completed arm-seeds (their reproduce_arm.json) are reused; an interrupted one resumes from
    its checkpoint. Raises UserError for bad settings before anything is trained, and
    `runner.ReproductionInterrupted` when a signal stops training.
    """
    # torch: `reproduce` imports without torch (plan, replot, results)
    import torch


    if not seeds:
        raise UserError("--seeds must be at least 1")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: pass a folder")
    dim = budget.representation_dim()
    arms = arms_for(target, dim, d0=d0, grid=d0_grid)
    tables = {t: [a.key for a in arms_for(t, dim, d0=d0, grid=d0_grid)]
              for t in tables_of(target)}
    for arm in arms:  # every config must resolve before hours of training start
        budget.config(arm, seeds[0])
    jobs = plan_jobs(arms, seeds, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RUNS_DIR).mkdir(exist_ok=True)
    if not (out / ".gitignore").exists():
        atomic_write_bytes(out / ".gitignore", GITIGNORE.encode())
    meta = run_metadata()
    load_start, t0 = _load(), time.perf_counter()
    log(f"{target}: {len(arms)} arms x {len(seeds)} seed(s) = {len(jobs)} runs into {out} "
        f"(load average {load_start:.2f})")
    records: dict[tuple[str, int], ArmRecord] = {}
    reused, fresh_walls = 0, []
    for i, job in enumerate(jobs, 1):
        tag = f"[{i}/{len(jobs)}] {job.arm.key} seed {job.seed}"
        log(f"{tag}: {job.arm.label} -> {job.run_dir}")
        def job_log(m: str, tag: str = tag) -> None:
            log(f"{tag}: {m}")

        record, was_reused = run_job(job, budget, progress=progress, quiet=quiet,
                                     keep_features=keep_features, log=job_log)
        records[(job.arm.key, job.seed)] = record
        reused += was_reused
        if not was_reused:
            fresh_walls.append(record.wall_s.total)
        p = record.probe
        assert p is not None  # every arm is probed (runner.run_job)
        left = len(jobs) - i
        eta = (f", about {left * sum(fresh_walls) / len(fresh_walls) / 60:.0f} min left"
               if fresh_walls and left else "")
        log(f"{tag}: {'reused' if was_reused else 'done'}: top-1 {p.top1:.2f}%, kNN "
            f"{p.knn_top1:.2f}%, collapsed dims r {record.spectrum_r.collapsed_dims}, "
            f"z {record.spectrum_z.collapsed_dims} ({record.wall_s.total:.0f} s{eta})")
    rows = aggregate(arms, records, seeds)
    first = records[(arms[0].key, seeds[0])]
    results: dict[str, Any] = {
        "kind": "dimcollapse-reproduction",
        "target": target,
        "tables": tables,
        "table_titles": {t: TABLE_TITLES[t] for t in tables},
        "seeds": list(seeds),
        "budget": budget.describe(),
        "schedule": schedule_text(budget, arms[0], seeds[0], first),
        "protocol": (f"L-BFGS logistic regression on train-standardised r "
                     f"({_n_train(out, first)} train images), l2 "
                     f"{'selected on 10% held-out train rows' if budget.select_l2 else 'fixed'};"
                     " kNN k = 200, cosine, temperature 0.07"),
        "collapse_threshold": first.spectrum_r.threshold,
        "representation_dim": dim,
        "arms": rows,
        "findings": findings_by_table(rows, tables, TABLE_TITLES),
        "figures": draw_all(rows, out),
        "total_jobs": len(jobs),
        "reused_arms": reused,
        "arm_wall_s": round(sum(r.wall_s.total for r in records.values()), 2),
        "wall_s": round(time.perf_counter() - t0, 2),
        "threads": torch.get_num_threads(),
        "load_average": {"start": load_start, "end": _load()},
        "metadata": meta,
    }
    return finish_results(results, out, write_results_report, log)


def finish_results(results: dict[str, Any], out: Path,
                   write_report: Callable[[dict[str, Any], Path], tuple[Path, Path]],
                   log: Callable[[str], None]) -> dict[str, Any]:
    """Write results.json and its Markdown/CSV report, then log the findings and the files."""
    write_json(out / RESULTS_FILE, results)
    md, csv = write_report(results, out)
    for line in results["findings"]["lines"]:
        log(line)
    log(f"wrote {out / RESULTS_FILE}, {md}, {csv} and {len(results['figures'])} figure(s) "
        f"({results['wall_s']:.0f} s)")
    return results


def _n_train(out: Path, record: ArmRecord) -> int | None:
    path = out / record.run_dir / record.files.probe
    try:
        return json.loads(path.read_text())["linear_probe"]["n_train"]
    except (OSError, KeyError, json.JSONDecodeError):
        return None
