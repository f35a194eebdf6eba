"""Aggregate per-arm records over seeds and state what they show (no number is typed in here).

`aggregate` turns the arm records (`records.ArmRecord`, reproduce_arm.json) into per-arm
statistics (mean, sample std over seeds, values); `findings` compares them with the paper: the
ordering of Table 1 with the seed spread, and whether the representation collapses without a
projector but not with DirectCLR (Fig 7b / 9).
"""

from __future__ import annotations

import statistics
from typing import Any

from dimcollapse.reproduce.arms import Arm
from dimcollapse.reproduce.records import ArmRecord

# What each per-seed value is read from, in a record: (part, attribute).
METRICS = {
    "top1": ("probe", "top1"),
    "top5": ("probe", "top5"),
    "knn_top1": ("probe", "knn_top1"),
    "rankme_r": ("spectrum_r", "rankme"),
    "collapsed_dims_r": ("spectrum_r", "collapsed_dims"),
    "rankme_z": ("spectrum_z", "rankme"),
    "collapsed_dims_z": ("spectrum_z", "collapsed_dims"),
    "subvector_top1": ("subvector_probe", "top1"),
}


def stat(values: list[float]) -> dict[str, Any] | None:
    """mean, sample std (n - 1; None for one value), min, max, n, values. None if empty."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return {"mean": statistics.fmean(vals),
            "std": statistics.stdev(vals) if len(vals) > 1 else None,
            "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def _get(record: ArmRecord, path: tuple[str, str]):
    part = getattr(record, path[0])
    return None if part is None else getattr(part, path[1])


def aggregate(arms: list[Arm], records: dict[tuple[str, int], ArmRecord],
              seeds: list[int]) -> list[dict[str, Any]]:
    """Per arm: its description, the per-seed records' key numbers and their statistics."""
    rows = []
    for arm in arms:
        recs = [records[(arm.key, s)] for s in seeds if (arm.key, s) in records]
        row: dict[str, Any] = {**arm.describe(), "seeds": [r.seed for r in recs]}
        for name, path in METRICS.items():
            row[name] = stat([_get(r, path) for r in recs])
        row["paper_subvector_top1"] = arm.paper_subvector_top1 if row["subvector_top1"] else None
        row["per_seed"] = [{"seed": r.seed, "run_dir": r.run_dir,
                            **{n: _get(r, p) for n, p in METRICS.items()},
                            "l2": _get(r, ("probe", "l2")),
                            "wall_s": r.wall_s.total} for r in recs]
        rows.append(row)
    return rows


def _mean(row: dict, name: str) -> float | None:
    s = row.get(name)
    return None if s is None else s["mean"]


def _known_mean(row: dict, name: str) -> float:
    """`_mean` of a row the caller has already filtered to those that have `name`."""
    m = _mean(row, name)
    assert m is not None, name
    return m


def _std(row: dict, name: str) -> float | None:
    s = row.get(name)
    return None if s is None else s["std"]


def ordering(rows: list[dict]) -> dict[str, Any] | None:
    """Our top-1 ordering of the arms that have a paper number, against the paper's.

    Adjacent pairs in the paper's order are compared: `separated` when |difference of means|
    exceeds the sum of the two seed standard deviations (the mean +- std intervals are
    disjoint); None with a single seed.
    """
    rated = [r for r in rows if r["paper_top1"] is not None and _mean(r, "top1") is not None]
    if len(rated) < 2:
        return None
    paper = sorted(rated, key=lambda r: -r["paper_top1"])
    ours = sorted(rated, key=lambda r: -_known_mean(r, "top1"))
    pairs = []
    for a, b in zip(paper, paper[1:], strict=False):
        diff = _known_mean(a, "top1") - _known_mean(b, "top1")
        sa, sb = _std(a, "top1"), _std(b, "top1")
        spread = None if sa is None or sb is None else sa + sb
        pairs.append({"higher_in_paper": a["key"], "lower_in_paper": b["key"],
                      "paper_difference": a["paper_top1"] - b["paper_top1"],
                      "our_difference": diff, "seed_spread": spread,
                      "same_sign": diff > 0,
                      "separated": None if spread is None else abs(diff) > spread})
    return {"paper_order": [r["key"] for r in paper], "our_order": [r["key"] for r in ours],
            "holds": [r["key"] for r in paper] == [r["key"] for r in ours], "pairs": pairs}


def findings_by_table(rows: list[dict], tables: dict[str, list[str]],
                      titles: dict[str, str]) -> dict[str, Any]:
    """`findings` of each table's own arms; one table: `findings(rows)` itself. `lines` of
    several tables are prefixed with the table's title."""
    if len(tables) == 1:
        return findings(rows)
    per = {t: findings([r for r in rows if r["key"] in keys]) for t, keys in tables.items()}
    lines = [f"{titles[t].split(':')[0]}: {line}" for t, f in per.items() for line in f["lines"]]
    return {"tables": per, "lines": lines}


def findings(rows: list[dict]) -> dict[str, Any]:
    """Structured comparisons with the paper, plus one plain sentence each (`lines`)."""
    by_key = {r["key"]: r for r in rows}
    out: dict[str, Any] = {"ordering": ordering(rows), "lines": []}
    lines = out["lines"]
    order = out["ordering"]
    if order is not None:
        ours = " > ".join(f"{k} {_mean(by_key[k], 'top1'):.2f}" for k in order["our_order"])
        paper = " > ".join(f"{k} {by_key[k]['paper_top1']}" for k in order["paper_order"])
        lines.append(f"Top-1 ordering here: {ours}; paper (ImageNet): {paper}. The paper's "
                     f"ordering {'holds' if order['holds'] else 'does NOT hold'} at this scale.")
        for p in order["pairs"]:
            sep = ("no seed spread (one seed)" if p["separated"] is None else
                   ("beyond" if p["separated"] else "within")
                   + f" the seed spread ({p['seed_spread']:.2f})")
            lines.append(f"{p['higher_in_paper']} - {p['lower_in_paper']}: "
                         f"{p['our_difference']:+.2f} points here ({sep}), "
                         f"{p['paper_difference']:+.1f} in the paper.")
    collapse = {r["key"]: _known_mean(r, "collapsed_dims_r") for r in rows
                if _mean(r, "collapsed_dims_r") is not None}
    out["collapsed_dims_r"] = collapse
    none = collapse.get("none")
    direct = [k for k in collapse if k.startswith("directclr") and by_key[k]["paper_top1"]]
    if none is not None and direct:
        d = collapse[direct[0]]
        verdict = "collapses more than" if none > d else "does NOT collapse more than"
        lines.append(f"Representation spectrum (test split, eigenvalues < threshold x the "
                     f"largest): no projector {none:g} collapsed dims (mean over seeds), "
                     f"{direct[0]} {d:g}; without a projector r {verdict} with DirectCLR.")
        out["no_projector_collapses_more_than_directclr"] = none > d
    for key in ("mlp", "linear"):
        if key in collapse:
            lines.append(f"{by_key[key]['label']}: {collapse[key]:g} collapsed dims of r, "
                         f"{_mean(by_key[key], 'collapsed_dims_z'):g} of its embedding z.")
    sweep = [r for r in rows if r["projector"] == "directclr" and _mean(r, "top1") is not None]
    if len(sweep) >= 2:
        best = max(sweep, key=lambda r: _known_mean(r, "top1"))
        grid = ", ".join(str(r["d0"]) for r in sorted(sweep, key=lambda r: r["d0"]))
        lines.append(f"d0 sweep: best top-1 {_mean(best, 'top1'):.2f} at d0 = {best['d0']} "
                     f"(of {grid}).")
        out["best_d0"] = best["d0"]
    return out
