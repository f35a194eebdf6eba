"""Typed records of a reproduction: one `ArmRecord` per arm x seed (reproduce_arm.json).

`runner.run_job` makes them (or reads them back with `ArmRecord.from_dict` when an arm is
reused); `results.aggregate` and `pipeline` read their attributes. `to_dict()` gives the JSON
keys in order: the arm's own description (`Arm.describe()`) first, then the fields below.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from dimcollapse.records import Record


@dataclass(frozen=True)
class ProbeBrief(Record):
    """The numbers of one probe.json that a reproduction reports (accuracies in percent)."""

    top1: float
    top5: float
    knn_top1: float | None
    knn_top5: float | None
    l2: float
    converged: bool
    iterations: int
    dim: int

    @classmethod
    def of(cls, rec) -> ProbeBrief | None:
        """From an `eval.records.ProbeRecord` (None stays None)."""
        if rec is None:
            return None
        lp, kn = rec.linear_probe, rec.knn
        return cls(top1=lp.top1, top5=lp.top5, knn_top1=None if kn is None else kn.top1,
                   knn_top5=None if kn is None else kn.top5, l2=lp.l2, converged=lp.converged,
                   iterations=lp.iterations, dim=rec.dim)


@dataclass(frozen=True)
class SpectrumBrief(Record):
    """The numbers of one spectrum.json that a reproduction reports."""

    rankme: float | None
    collapsed_dims: int
    threshold: float
    dim: int
    n: int
    alpha_req: float | None

    @classmethod
    def of(cls, s) -> SpectrumBrief:
        """From a `spectrum.SpectrumSummary`."""
        return cls(rankme=s.rankme, collapsed_dims=s.collapsed_dims, threshold=s.threshold,
                   dim=s.dim, n=s.n, alpha_req=s.alpha_req)


@dataclass(frozen=True)
class TrainInfo(Record):
    """What the arm's run folder says about its training (run.json)."""

    status: str | None
    steps: int
    steps_per_epoch: int | None
    train_images: int | None
    precision: str | None
    starts: tuple[int | None, ...]  # the step each start (fresh or resumed) began at
    images_per_s: float | None
    last_start_wall_s: float | None
    online_probe_acc: float | None


@dataclass(frozen=True)
class WallTimes(Record):
    """Seconds spent on the arm in this process (rounded to 0.01 s)."""

    train: float
    eval: float
    total: float


@dataclass(frozen=True)
class ArmFiles(Record):
    """Result files of the arm, relative to its run folder."""

    probe: str
    subvector_probe: str | None
    spectrum_r: str
    spectrum_z: str


_PARTS = {"wall_s": WallTimes, "train": TrainInfo, "probe": ProbeBrief,
          "subvector_probe": ProbeBrief, "spectrum_r": SpectrumBrief,
          "spectrum_z": SpectrumBrief, "files": ArmFiles}


@dataclass(frozen=True)
class ArmRecord(Record):
    """One arm x seed: its description, plan, commands, timings, training and results."""

    arm: dict[str, Any]  # `Arm.describe()`: key, label, projector, d0, paper_top1
    seed: int
    run_dir: str  # relative to the results folder
    plan: dict[str, Any]  # what determines the results (`Budget.plan`)
    commands: dict[str, Any]  # how to redo it by hand
    git_sha: str | None
    utc: str
    wall_s: WallTimes
    train: TrainInfo
    probe: ProbeBrief | None
    subvector_probe: ProbeBrief | None
    spectrum_r: SpectrumBrief
    spectrum_z: SpectrumBrief
    files: ArmFiles

    @property
    def key(self) -> str:
        return self.arm["key"]

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        return {**d.pop("arm"), **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArmRecord:
        """The inverse of `to_dict` (raises KeyError/TypeError for a record of another shape)."""
        names = [f.name for f in fields(cls) if f.name != "arm"]
        values: dict[str, Any] = {}
        for name in names:
            value = d[name]
            part = _PARTS.get(name)
            if part is not None and value is not None:  # JSON lists were tuples
                value = part(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in value.items()})
            values[name] = value
        return cls(arm={k: v for k, v in d.items() if k not in names}, **values)
