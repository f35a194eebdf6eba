"""Train, probe and measure every arm x seed of a reproduction, one run folder each.

Layout of the output folder DIR:

    DIR/runs/<arm>/seed<k>/        a `dimcollapse train` run folder, plus the files of
                                   `dimcollapse probe` (probe.json, probe_subvector<d0>.json)
                                   and `dimcollapse spectrum` (spectrum_representation/,
                                   spectrum_embedding/), and reproduce_arm.json (the arm's
                                   record, written last, atomically)
    DIR/results.json, results.md, results.csv and the figures (see `reproduce.report`)

Crash safety: an arm is complete when its reproduce_arm.json exists; a rerun reuses it without
training or evaluating (its plan must equal the new one, else UserError). An arm without it
resumes training from its run folder's checkpoint (`train.plan_run`), so a crash or kill loses
at most the steps since the arm's last checkpoint. Training runs in this process through
`dimcollapse.train.train`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dimcollapse.config import flatten
from dimcollapse.errors import UserError
from dimcollapse.report.reproduce_figures import spectrum_title
from dimcollapse.report.spectrum_plot import write_spectrum_report
from dimcollapse.reproduce.arms import Arm
from dimcollapse.reproduce.budget import Budget
from dimcollapse.reproduce.commands import eval_commands, train_command
from dimcollapse.reproduce.records import (
    ArmFiles,
    ArmRecord,
    ProbeBrief,
    SpectrumBrief,
    TrainInfo,
    WallTimes,
)
from dimcollapse.runinfo import git_sha, run_metadata, write_json

ARM_FILE = "reproduce_arm.json"
RUNS_DIR = "runs"


class ReproductionInterrupted(Exception):
    """Training of an arm was stopped by SIGTERM/SIGINT (its checkpoint is on disk)."""

    def __init__(self, message: str, signum: int | None):
        super().__init__(message)
        self.signum = signum


@dataclass(frozen=True)
class Job:
    arm: Arm
    seed: int
    out_dir: Path
    group: str | None = None  # a setting of collapse-factors: runs/<group>/<arm>/seed<k>

    @property
    def rel_dir(self) -> str:
        group = "" if self.group is None else f"{self.group}/"
        return f"{RUNS_DIR}/{group}{self.arm.key}/seed{self.seed}"

    @property
    def run_dir(self) -> Path:
        return self.out_dir / self.rel_dir


def plan_jobs(arms: list[Arm], seeds: list[int], out_dir: Path) -> list[Job]:
    """Every arm for every seed, seeds outermost: after the first seed, each arm has a result."""
    return [Job(arm, seed, Path(out_dir)) for seed in seeds for arm in arms]


def read_record(job: Job) -> ArmRecord | None:
    path = job.run_dir / ARM_FILE
    if not path.is_file():
        return None
    try:
        return ArmRecord.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None  # a damaged record is recomputed (training resumes or is already done)


def run_job(job: Job, budget: Budget, *, progress: bool = False, keep_features: bool = False,
            quiet: bool = False, log: Callable[[str], None] = lambda m: None
            ) -> tuple[ArmRecord, bool]:
    """Train (or resume) and evaluate one arm x seed; returns (record, reused).

    progress: progress bars (stderr); quiet: no status lines from the training loop."""
    plan = budget.plan(job.arm, job.seed)
    record = read_record(job)
    if record is not None:
        if record.plan != plan:
            raise UserError(
                f"{job.run_dir} holds a result computed with a different budget or protocol "
                f"({_plan_diff(record.plan or {}, plan)}); pass a new --out or delete "
                "that folder")
        return record, True
    t0 = time.perf_counter()
    train_info = _train(job, budget, quiet=quiet, log=log)
    t_train = time.perf_counter() - t0
    evaluation = _evaluate(job, budget, progress=progress, log=log)
    if not keep_features:
        shutil.rmtree(job.run_dir / "features", ignore_errors=True)
    record = _make_record(job, budget, plan, train_info, evaluation, t_train,
                          time.perf_counter() - t0 - t_train)

    write_json(job.run_dir / ARM_FILE, record.to_dict())
    return record, False


def _train(job: Job, budget: Budget, *, quiet: bool, log) -> TrainInfo:
    # torch: `reproduce` imports without torch (plan, replot, results)
    from dimcollapse.train import RunFolder, plan_run, train

    overrides = budget.train_overrides(job.arm, job.seed)
    cfg, ckpt = plan_run(job.run_dir, preset=budget.preset, overrides=overrides)
    if ckpt is not None:
        log(f"resuming from {ckpt}")
    result = train(cfg, job.run_dir, checkpoint=ckpt, quiet=quiet)
    if result.status == "interrupted":
        raise ReproductionInterrupted(
            f"stopped by signal during {job.arm.key} seed {job.seed} at step {result.step}; "
            "its checkpoint is saved: rerun the same command to resume", result.signum)
    run = RunFolder(job.run_dir, writer=False).read_run()
    starts = run.get("starts", [])
    final = run.get("final") or {}
    return TrainInfo(status=run.get("status"), steps=result.total_steps,
                     steps_per_epoch=run.get("steps_per_epoch"),
                     train_images=run.get("train_images"), precision=run.get("precision"),
                     starts=tuple(s.get("step") for s in starts),
                     images_per_s=final.get("images_per_s"),
                     last_start_wall_s=run.get("wall_s"),
                     online_probe_acc=final.get("probe_acc"))


def _evaluate(job: Job, budget: Budget, *, progress: bool, log) -> dict[str, Any]:
    # torch: `reproduce` imports without torch (plan, replot, results)
    from dimcollapse.eval.evaluate import Evaluator, probe_file, spectrum_dir
    from dimcollapse.eval.target import data_spec, resolve_target

    target = resolve_target(job.run_dir)
    spec = data_spec(target, cache_dir=budget.cache_dir, train_subset=budget.probe_subset)
    ev = Evaluator(target, spec, cache_dir=job.run_dir / "features",
                   precision=budget.eval_precision, batch_size=budget.eval_batch_size,
                   progress=progress, log=log)
    meta = run_metadata()
    out: dict[str, Any] = {}
    for space in ("embedding", "representation"):
        summary = ev.spectrum(space)
        write_spectrum_report(summary, job.run_dir / spectrum_dir(space), metadata=meta,
                              title=spectrum_title(space, job.arm.label, job.seed))
        out[space] = summary
    out["probe"] = ev.probe(select=budget.select_l2)
    write_json(job.run_dir / probe_file(None), {**out["probe"].to_dict(), "metadata": meta})
    out["subvector"] = None
    d0 = job.arm.d0 if job.arm.projector == "directclr" else None  # directclr always has one
    if d0 is not None and d0 < target.loaded.feature_dim:
        out["subvector"] = ev.probe(subvector=d0, select=budget.select_l2)
        write_json(job.run_dir / probe_file(d0),
                   {**out["subvector"].to_dict(), "metadata": meta})
    return out


def _make_record(job: Job, budget: Budget, plan: dict, train_info: TrainInfo, ev: dict,
                 t_train: float, t_eval: float) -> ArmRecord:
    # torch: `reproduce` imports without torch (plan, replot, results)
    from dimcollapse.eval.evaluate import probe_file, spectrum_dir

    sub = job.arm.d0 if ev["subvector"] is not None else None
    overrides = budget.train_overrides(job.arm, job.seed)
    return ArmRecord(
        arm=job.arm.describe(), seed=job.seed, run_dir=job.rel_dir, plan=plan,
        commands={
            "train": train_command(budget.preset, overrides, job.rel_dir),
            "train_from_config": f"dimcollapse train --config {job.rel_dir}/config.json "
                                 f"--out {job.rel_dir}",
            "eval": eval_commands(job.rel_dir, select_l2=budget.select_l2, subvector=sub,
                                  precision=budget.eval_precision),
        },
        git_sha=git_sha(),
        utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        wall_s=WallTimes(train=round(t_train, 2), eval=round(t_eval, 2),
                         total=round(t_train + t_eval, 2)),
        train=train_info,
        probe=ProbeBrief.of(ev["probe"]),
        subvector_probe=ProbeBrief.of(ev["subvector"]),
        spectrum_r=SpectrumBrief.of(ev["representation"]),
        spectrum_z=SpectrumBrief.of(ev["embedding"]),
        files=ArmFiles(probe=probe_file(None),
                       subvector_probe=None if sub is None else probe_file(sub),
                       spectrum_r=f"{spectrum_dir('representation')}/spectrum.json",
                       spectrum_z=f"{spectrum_dir('embedding')}/spectrum.json"),
    )


def _plan_diff(old: dict, new: dict) -> str:
    a, b = flatten(old), flatten(new)
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    shown = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:4])
    return shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
