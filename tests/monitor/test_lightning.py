"""CollapseMonitorCallback with a real lightning.Trainer on CPU: the logged metrics are
`dimcollapse.measure` of exactly the rows of the window (one process, and rank 0 of two DDP
processes over the global batch), to 1e-9 relative."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning")

import dimcollapse  # noqa: E402
from dimcollapse.errors import UserError  # noqa: E402

HERE = Path(__file__).resolve().parent
METRICS = ("rankme", "alpha_req", "collapsed_dims", "normalized_std", "n")
pytestmark = pytest.mark.usefixtures("one_thread")


def _csv_rows(out: Path) -> list[dict]:
    with open(out / "csv" / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r.get("collapse/z/rankme")]


def _expected(seen_per_rank: list[dict], steps, name: str) -> dict[str, float]:
    """measure() of every row `name` produced at these steps, on every rank."""
    rows = torch.cat([t for seen in seen_per_rank for s in steps for t in seen[s][name]])
    s = dimcollapse.measure(rows.double())
    return {m: float(getattr(s, m)) for m in METRICS if getattr(s, m) is not None}


def _check(logged: dict, seen_per_rank: list[dict], steps) -> None:
    for name in ("z", "e"):
        want = _expected(seen_per_rank, steps, name)
        assert want["n"] == len(seen_per_rank) * len(steps) * 16 * (2 if name == "z" else 1)
        got = {m: float(logged[f"collapse/{name}/{m}"]) for m in want}
        assert got == pytest.approx(want, rel=1e-9, abs=0)
        assert "alpha_req" in got and got["rankme"] > 1


def test_one_process_logs_measure_of_the_window(tmp_path):
    from lightning_fixture import fit

    trainer, model, callback = fit(tmp_path, steps=8, every=4, window=2)
    rows = _csv_rows(tmp_path)
    assert len(rows) == 2  # steps 4 and 8; each over the batches of steps 3-4 and 7-8
    seen = [model.seen]
    _check(rows[0], seen, steps=(3, 4))
    _check(rows[1], seen, steps=(7, 8))
    assert callback.last == pytest.approx({k: float(v) for k, v in rows[1].items()
                                           if k.startswith("collapse/")}, rel=1e-12)
    assert [int(r["step"]) for r in rows] == [3, 7]  # Lightning's x axis: batches before
    assert not model.projector._forward_hooks  # removed after every batch


def test_every_n_steps_is_not_tied_to_log_every_n_steps(tmp_path):
    """every=3 with log_every_n_steps=2, all batches pooled: results at steps 3 and 6 only."""
    from lightning_fixture import fit

    _, model, _ = fit(tmp_path, steps=7, every=3, window=None, log_every=2)
    rows = _csv_rows(tmp_path)
    assert [int(r["step"]) for r in rows] == [2, 5]
    _check(rows[0], [model.seen], steps=(1, 2, 3))
    _check(rows[1], [model.seen], steps=(4, 5, 6))


def test_wrong_module_name_lists_the_modules(tmp_path):
    import lightning as L
    from lightning_fixture import TinySimCLR, dataset

    from dimcollapse.monitor.lightning import CollapseMonitorCallback

    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False,
                        callbacks=[CollapseMonitorCallback({"z": "projektor"})],
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(UserError, match="did you mean 'projector'"):
        trainer.fit(TinySimCLR(), torch.utils.data.DataLoader(dataset(), batch_size=16))


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_rank0_logs_the_global_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run([sys.executable, str(HERE / "lightning_fixture.py"), str(tmp_path),
                           "2"], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    seen = [r["seen"] for r in ranks]
    rows = _csv_rows(tmp_path)
    assert len(rows) == 2
    _check(rows[0], seen, steps=(3, 4))  # both ranks' rows: 2 x 16 x 2 steps (x 2 views for z)
    _check(rows[1], seen, steps=(7, 8))
    assert ranks[0]["last"] == ranks[1]["last"]  # every rank got the global numbers
    assert ranks[0]["hooks_left"] == ranks[1]["hooks_left"] == 0
    # the ranks saw different rows (DistributedSampler), so one rank alone would differ
    alone = _expected(seen[:1], (7, 8), "z")
    assert alone["rankme"] != pytest.approx(float(rows[1]["collapse/z/rankme"]), rel=1e-6)
