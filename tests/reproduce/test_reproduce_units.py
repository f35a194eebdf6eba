"""The reproduction's pieces without training: arms and paper numbers, d0 grid, budget and
plan, aggregation over seeds, and the findings that compare with the paper."""

from __future__ import annotations

import statistics

import pytest

from dimcollapse.errors import UserError
from dimcollapse.reproduce import Budget, arms_for, d0_grid, parse_set, scaled_d0
from dimcollapse.reproduce.arms import TABLE_TITLES, tables_of
from dimcollapse.reproduce.records import (
    ArmFiles,
    ArmRecord,
    ProbeBrief,
    SpectrumBrief,
    TrainInfo,
    WallTimes,
)
from dimcollapse.reproduce.results import aggregate, findings, findings_by_table, ordering, stat


def test_the_subvector_paper_number_belongs_to_the_papers_d0_only():
    arms = {a.key: a for a in arms_for("d0-sweep", 512)}
    assert arms["directclr-d0_90"].paper_subvector_top1 == 47.9
    assert arms["directclr-d0_16"].paper_subvector_top1 is None
    assert arms["directclr-d0_16"].paper_top1 is None


def test_tables_and_paper_numbers():
    t1 = arms_for("table1", 512)
    assert [a.key for a in t1] == ["mlp", "linear", "none", "directclr-d0_90"]
    assert [a.paper_top1 for a in t1] == [66.5, 61.1, 51.5, 62.7]
    t2 = {a.key: a.paper_top1 for a in arms_for("table2", 512)}
    assert t2 == {"none": 51.5, "orthogonal": 52.2, "linear": 61.1, "diagonal": 60.2,
                  "lowrank-d0_90": 62.3, "lowrank-diagonal-d0_90": 62.7,
                  "random-subvector-d0_90": 43.0}
    sweep = arms_for("d0-sweep", 512)
    assert [a.d0 for a in sweep] == [16, 32, 64, 90, 128, 256, 384, 512]
    assert [a.paper_top1 for a in sweep if a.paper_top1] == [62.7]  # only d0 = 360/2048
    assert d0_grid(2048) == [64, 128, 256, 360, 512, 1024, 1536, 2048]
    assert scaled_d0(2048) == 360 and scaled_d0(512) == 90
    every = arms_for("all", 512)
    assert len(every) == len({a.key for a in every}) == 4 + 5 + 7  # shared arms once
    # --d0 moves DirectCLR (and the paper's number with it); --d0-grid replaces the sweep
    assert arms_for("table1", 512, d0=64)[3].paper_top1 == 62.7
    assert [a.d0 for a in arms_for("d0-sweep", 512, grid=[8, 4, 8])] == [4, 8]
    with pytest.raises(UserError, match="1..512"):
        arms_for("table1", 512, d0=600)
    with pytest.raises(UserError, match="do not fit"):
        arms_for("d0-sweep", 512, grid=[0, 16])
    with pytest.raises(UserError, match="unknown table"):
        arms_for("table3", 512)


def test_budget_overrides_and_plan():
    b = Budget("cpu", "/data", max_steps=50, train_subset=1000, threads=1,
               extra=parse_set(["optim.lr=0.1", "views.preset=cifar"]))
    arm = arms_for("table1", 512)[3]
    cfg = b.config(arm, 3)
    assert (cfg.loop.max_steps, cfg.data.train_subset, cfg.seed) == (50, 1000, 3)
    assert (cfg.model.projector, cfg.model.d0, cfg.optim.lr) == ("directclr", 90, 0.1)
    assert cfg.model.backbone == "resnet18" and b.representation_dim() == 512
    plan = b.plan(arm, 3)["config"]
    assert "loop.threads" not in plan and "data.data_dir" not in plan
    assert plan["loop.max_steps"] == 50 and plan["model.d0"] == 90
    # the hardware does not change the plan; the schedule does
    assert Budget("cpu", "/elsewhere", max_steps=50, train_subset=1000, threads=2,
                  extra=b.extra).plan(arm, 3) == b.plan(arm, 3)
    assert Budget("cpu", "/data", max_steps=51, train_subset=1000,
                  extra=b.extra).plan(arm, 3) != b.plan(arm, 3)
    epochs = Budget("cifar", "/data", epochs=2).config(arm, 0)
    assert epochs.loop.max_steps is None and epochs.loop.epochs == 2
    with pytest.raises(UserError, match="pass one"):
        Budget("cpu", "/data", max_steps=5, epochs=2)
    with pytest.raises(UserError, match="unknown preset"):
        Budget("gpu", "/data")
    with pytest.raises(UserError, match="section.field=VALUE"):
        parse_set(["lr=0.1"])
    with pytest.raises(UserError, match="unknown config key"):
        Budget("cpu", "/d", extra=parse_set(["optim.lr_max=1"])).config(arm, 0)


def _probe(top1, top5=None, knn=None, l2=0.01):
    return ProbeBrief(top1=top1, top5=top5, knn_top1=knn, knn_top5=None, l2=l2, converged=True,
                      iterations=1, dim=512)


def _spectrum(rankme, collapsed_dims):
    return SpectrumBrief(rankme=rankme, collapsed_dims=collapsed_dims, threshold=1e-4, dim=512,
                         n=100, alpha_req=None)


def _record(key, seed, top1, knn, coll_r, coll_z, sub=None):
    return ArmRecord(
        arm={"key": key}, seed=seed, run_dir=f"runs/{key}/seed{seed}", plan={}, commands={},
        git_sha=None, utc="", wall_s=WallTimes(train=0.5, eval=0.5, total=1.0),
        train=TrainInfo(status="complete", steps=1, steps_per_epoch=None, train_images=None,
                        precision=None, starts=(0,), images_per_s=None, last_start_wall_s=None,
                        online_probe_acc=None),
        probe=_probe(top1, top1 + 40, knn), subvector_probe=None if sub is None else _probe(sub),
        spectrum_r=_spectrum(100.0 + seed, coll_r), spectrum_z=_spectrum(50.0, coll_z),
        files=ArmFiles(probe="probe.json", subvector_probe=None, spectrum_r="r", spectrum_z="z"))


def test_aggregate_is_mean_and_sample_std_over_seeds():
    arms = arms_for("table1", 512)
    vals = {"mlp": [52.0, 53.0, 51.5], "linear": [48.0, 49.0, 48.5],
            "none": [53.0, 53.5, 52.0], "directclr-d0_90": [53.0, 52.0, 53.5]}
    recs = {(k, s): _record(k, s, v[s], v[s] - 3, 10 * s, 5, sub=40.0 + s if "dir" in k
                            else None)
            for k, v in vals.items() for s in range(3)}
    rows = aggregate(arms, recs, [0, 1, 2])
    for row in rows:
        v = vals[row["key"]]
        assert row["top1"]["mean"] == pytest.approx(statistics.fmean(v))
        assert row["top1"]["std"] == pytest.approx(statistics.stdev(v))
        assert row["top1"]["values"] == v and row["seeds"] == [0, 1, 2]
        assert row["collapsed_dims_r"]["mean"] == pytest.approx(10.0)
        assert row["knn_top1"]["mean"] == pytest.approx(statistics.fmean(v) - 3)
    assert rows[3]["subvector_top1"]["mean"] == pytest.approx(41.0)
    assert rows[3]["paper_subvector_top1"] == 47.9 and rows[0]["subvector_top1"] is None
    one = aggregate(arms[:1], {("mlp", 0): recs[("mlp", 0)]}, [0, 1])
    assert one[0]["top1"]["std"] is None and one[0]["top1"]["n"] == 1
    assert stat([]) is None


def test_ordering_and_findings_follow_the_numbers():
    arms = arms_for("table1", 512)

    def rows_for(means, spread, coll_none=99, coll_dclr=0):
        recs = {}
        for (k, m) in zip([a.key for a in arms], means, strict=True):
            coll = coll_none if k == "none" else coll_dclr if "dir" in k else 1
            for s in (0, 1):
                recs[(k, s)] = _record(k, s, m + (spread if s else -spread), 40, coll, 3)
        return aggregate(arms, recs, [0, 1])

    # the paper's order mlp > directclr > linear > none, clearly separated
    good = rows_for([60, 50, 40, 55], 0.1)  # in arms order: mlp, linear, none, directclr
    o = ordering(good)
    assert o["holds"] and o["paper_order"] == ["mlp", "directclr-d0_90", "linear", "none"]
    assert all(p["separated"] and p["same_sign"] for p in o["pairs"])
    f = findings(good)
    assert "holds at this scale" in f["lines"][0]
    assert f["no_projector_collapses_more_than_directclr"] is True
    # none best, differences within the seed spread, and no extra collapse without projector
    bad = rows_for([52.0, 51.8, 52.3, 51.9], 1.0, coll_none=0, coll_dclr=0)
    o = ordering(bad)
    assert not o["holds"] and o["our_order"][0] == "none"
    assert not any(p["separated"] for p in o["pairs"])
    f = findings(bad)
    assert "does NOT hold" in f["lines"][0]
    assert any("does NOT collapse more than" in line for line in f["lines"])
    assert f["no_projector_collapses_more_than_directclr"] is False


def test_a_comma_list_of_tables_runs_their_union_and_finds_per_table():
    both = arms_for("table1,table2", 512)
    keys = [a.key for a in both]
    assert keys == ["mlp", "linear", "none", "directclr-d0_90", "orthogonal", "diagonal",
                    "lowrank-d0_90", "lowrank-diagonal-d0_90", "random-subvector-d0_90"]
    assert tables_of("table1,table2") == ("table1", "table2")
    for bad in ("table1,table3", "table1,table1"):
        with pytest.raises(UserError, match="unknown or repeated table"):
            tables_of(bad)
    tables = {t: [a.key for a in arms_for(t, 512)] for t in ("table1", "table2")}
    recs = {(a.key, s): _record(a.key, s, 40.0 + i + 0.1 * s, 40, 0, 3)
            for i, a in enumerate(both) for s in (0, 1)}
    rows = aggregate(both, recs, [0, 1])
    f = findings_by_table(rows, tables, TABLE_TITLES)
    t2 = f["tables"]["table2"]["ordering"]
    assert set(t2["paper_order"]) == set(tables["table2"])  # table 2's arms only
    assert t2["paper_order"][:2] == ["lowrank-diagonal-d0_90", "lowrank-d0_90"]
    assert f["tables"]["table1"] == findings([r for r in rows if r["key"] in tables["table1"]])
    assert f["lines"][0].startswith("Table 1: Top-1 ordering here")
    assert any(line.startswith("Table 2: Top-1 ordering here") for line in f["lines"])
    assert findings_by_table(rows, {"table1": tables["table1"]}, TABLE_TITLES) == findings(rows)


def test_arm_record_round_trips_through_json():
    import json

    rec = _record("directclr-d0_90", 1, 52.5, 49.0, 3, 4, sub=41.0)
    rec = ArmRecord(**{**rec.__dict__, "arm": {"key": "directclr-d0_90", "label": "DirectCLR",
                                              "projector": "directclr", "d0": 90,
                                              "paper_top1": 62.7}})
    d = rec.to_dict()
    assert list(d)[:6] == ["key", "label", "projector", "d0", "paper_top1", "seed"]
    back = ArmRecord.from_dict(json.loads(json.dumps(d)))
    assert back == rec and back.key == "directclr-d0_90" and back.train.starts == (0,)
    with pytest.raises(KeyError):
        ArmRecord.from_dict({k: v for k, v in d.items() if k != "files"})
