"""Rows and findings of `reproduce collapse-factors`, computed from the per-arm files only.

Per (setting, arm): the number of eigenvalues of r (and z) below 1e-3, 1e-4 and 1e-5 of the
largest (test split, the spectrum protocol of `reproduce`: L2-normalised rows, centred, ddof 0,
Eqn 1), RankMe, top-1 and kNN top-1, each as `results.stat` over seeds. `findings` names the
settings in which r collapses without a projector and how much the 2-layer projector changes
that count; nothing in a sentence is typed in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dimcollapse.reproduce.records import ArmRecord
from dimcollapse.reproduce.results import stat
from dimcollapse.spectrum.metrics import COLLAPSE_REL_THRESHOLD

THRESHOLDS = (1e-3, 1e-4, 1e-5)  # relative to the largest eigenvalue
# A setting "collapses" when the no-projector arm has at least this many eigenvalues of r
# below COLLAPSE_REL_THRESHOLD x the largest (mean over seeds): the project's collapsed-dims
# count (spectrum.metrics.collapsed_dims) being nonzero.
MIN_COLLAPSED = 1


def tkey(t: float) -> str:
    """A threshold as a JSON key: 1e-4 -> '1e-04'."""
    return f"{t:.0e}"


def counts_below(eigenvalues, max_rank: int | None = None,
                 thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, int]:
    """Eigenvalues below t x the largest, for each t, among the `max_rank` measurable ones
    (the directions N rows can span; as `SpectrumSummary.collapsed_dims`). (d,) -> counts."""
    ev = np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1]
    if max_rank is not None:
        ev = ev[:max_rank]
    top = ev.max(initial=0.0)
    if top <= 0:
        return {tkey(t): int(ev.size) for t in thresholds}
    return {tkey(t): int(np.count_nonzero(ev < t * top)) for t in thresholds}


def spectrum_counts(path: str | Path) -> dict[str, int]:
    """`counts_below` of a spectrum.json (its eigenvalues and max_rank)."""
    d = json.loads(Path(path).read_text())
    return counts_below(d["eigenvalues"], d.get("max_rank"))


def setting_rows(settings, arms, records: dict[tuple[str, str, int], ArmRecord],
                 seeds: list[int], out_dir: str | Path) -> list[dict[str, Any]]:
    """One row per (setting, arm), in settings x arms order; records keyed (setting, arm, seed)."""
    out = Path(out_dir)
    rows = []
    for s in settings:
        for arm in arms:
            recs = [records[(s.key, arm.key, k)] for k in seeds if (s.key, arm.key, k) in records]
            per_seed: list[dict[str, Any]] = []
            for r in recs:
                assert r.probe is not None  # the target always probes its runs
                run = out / r.run_dir
                per_seed.append({
                    "seed": r.seed, "run_dir": r.run_dir,
                    "below_r": spectrum_counts(run / r.files.spectrum_r),
                    "below_z": spectrum_counts(run / r.files.spectrum_z),
                    "rankme_r": r.spectrum_r.rankme, "rankme_z": r.spectrum_z.rankme,
                    "top1": r.probe.top1, "knn_top1": r.probe.knn_top1,
                    "wall_s": r.wall_s.total})
            row = {"setting": s.key, "factor": s.factor, "setting_label": s.label,
                   "arm": arm.key, "label": arm.label, "dim": recs[0].spectrum_r.dim if recs
                   else None, "seeds": [r.seed for r in recs], "per_seed": per_seed}
            for space in ("r", "z"):
                row[f"below_{space}"] = {tkey(t): stat([p[f"below_{space}"][tkey(t)]
                                                        for p in per_seed]) for t in THRESHOLDS}
            for name in ("rankme_r", "rankme_z", "top1", "knn_top1"):
                row[name] = stat([p[name] for p in per_seed])
            rows.append(row)
    return rows


def _mean(row: dict | None, name: str, t: float | None = None) -> float | None:
    if row is None:
        return None
    s = row[name] if t is None else row[name][tkey(t)]
    return None if s is None else s["mean"]


def findings(rows: list[dict], settings, *, none: str = "none", projector: str = "mlp",
             threshold: float = COLLAPSE_REL_THRESHOLD,
             precision: dict | None = None) -> dict[str, Any]:
    """Which settings make r collapse without a projector, and what the projector changes.

    Per setting: the counts of r's eigenvalues below each threshold for both arms and their
    difference (projector - none). `collapsed`: the settings whose no-projector count below
    `threshold` is >= MIN_COLLAPSED. `lines`: one plain sentence each, from these numbers.
    """
    by = {(r["setting"], r["arm"]): r for r in rows}
    per, lines = [], []
    for s in settings:
        a, b = by.get((s.key, none)), by.get((s.key, projector))
        if a is None or _mean(a, "below_r", threshold) is None:
            continue
        entry = {"setting": s.key, "label": s.label, "dim": a["dim"],
                 "none": {tkey(t): _mean(a, "below_r", t) for t in THRESHOLDS},
                 "projector": None if b is None else
                 {tkey(t): _mean(b, "below_r", t) for t in THRESHOLDS},
                 "rankme_r": {"none": _mean(a, "rankme_r"), "projector": _mean(b, "rankme_r")}}
        entry["change"] = None if b is None else {
            k: entry["projector"][k] - entry["none"][k] for k in entry["none"]}
        entry["collapsed"] = entry["none"][tkey(threshold)] >= MIN_COLLAPSED
        per.append(entry)
    k = tkey(threshold)
    collapsed = [e for e in per if e["collapsed"]]
    rule = (f"at least {MIN_COLLAPSED} of the {per[0]['dim'] if per else '?'} eigenvalues of r "
            f"below {threshold:g} x the largest on the test split, mean over seeds")
    if not per:
        lines.append("No setting has results yet.")
    elif collapsed:
        parts = []
        for e in collapsed:
            text = f"{e['label']} ({e['none'][k]:g} without a projector"
            if e["change"] is not None:
                text += (f", {e['projector'][k]:g} with the 2-layer projector: it changes the "
                         f"count by {e['change'][k]:+g}")
            parts.append(text + ")")
        lines.append(f"r collapses without a projector ({rule}) in {len(collapsed)} of "
                     f"{len(per)} settings: " + "; ".join(parts) + ".")
    else:
        worst = max(per, key=lambda e: e["none"][k])
        lines.append(f"r does not collapse without a projector in any of the {len(per)} "
                     f"settings ({rule}): at most {worst['none'][k]:g} "
                     f"({worst['label']}).")
    with_change = [e for e in per if e["change"] is not None]
    if with_change:
        lo = min(with_change, key=lambda e: e["change"][k])
        hi = max(with_change, key=lambda e: e["change"][k])
        more = [e["label"] for e in with_change if e["change"][k] > 0]
        lines.append(f"The 2-layer projector changes r's count below {threshold:g} x the "
                     f"largest by {lo['change'][k]:+g} ({lo['label']}) to "
                     f"{hi['change'][k]:+g} ({hi['label']}); r has more such eigenvalues "
                     "with the projector than without in "
                     + (", ".join(more) if more else "no setting") + ".")
    if precision is not None:
        lines.append(precision_line(precision))
    return {"threshold": threshold, "min_collapsed": MIN_COLLAPSED, "rule": rule,
            "settings": per, "collapsed": [e["setting"] for e in collapsed], "lines": lines}


def precision_line(p: dict) -> str:
    """One sentence on the fp32 / bf16 check (`precision.precision_check`'s dict)."""
    c32, c16 = p["fp32"]["below"], p["bf16"]["below"]
    same = all(c32[k] == c16[k] for k in c32)
    counts = ", ".join(f"< {k}: {c32[k]} / {c16[k]}" for k in c32)
    floor = p["noise_floor"]
    unresolved = [k for k in c32 if float(k) <= floor]
    return (f"Precision check on {p['setting']}/{p['arm']} (seed {p['seed']}): eigenvalues of "
            f"r below t x the largest, fp32 / bf16 features: {counts} "
            f"({'identical' if same else 'they differ'}); noise floor of bf16 extraction "
            f"{floor:.2g} of the largest eigenvalue, so "
            + (f"counts at {', '.join(unresolved)} are within the noise"
               if unresolved else "every threshold lies above the noise") + ".")
