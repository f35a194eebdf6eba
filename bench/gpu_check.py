"""The phases of bench/gpu_check.sh after its setup: CUDA tests, timing, a short reproduction.

    python bench/gpu_check.py --out DIR --work DIR --deadline EPOCH_S --setup-json FILE
                              [--start EPOCH_S] [--dry] [--data-dir DIR]

Each phase is a subprocess with its own time limit (its process group is killed when it runs
over), and the report (DIR/gpu_check.json + DIR/gpu_check.md) is rewritten after every phase,
so a check cut short still leaves what it measured. The reproduction (table1, one seed, the
`cifar` preset) gets the time left: its epochs are planned from the timing phase's seconds
per step. --dry runs the same phases on a CPU at toy sizes (CUDA tests skipped), for CI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_data  # noqa: E402
import gpu_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESERVE_S = 15.0  # kept back at the end for the report
LIMITS_S = {"cuda_tests": {"gpu": 180.0, "dry": 120.0}, "timing": {"gpu": 120.0, "dry": 120.0}}
TABLE1_ARMS = 4  # mlp, linear, none, directclr
REPRO = {  # per mode: data written when none is given, batch, fixed costs of the estimate
    "gpu": {"train": 10_000, "test": 2_000, "batch_size": 512, "eval_s_per_arm": 30.0,
            "startup_s": 30.0, "max_epochs": 200},
    "dry": {"train": 64, "test": 32, "batch_size": 8, "eval_s_per_arm": 5.0,
            "startup_s": 5.0, "max_epochs": 1},
}


def run_logged(cmd: list[str], *, timeout_s: float, log: Path, env=None) -> tuple[int | None,
                                                                                   float]:
    """Run cmd from the repo root, output appended to log; (exit status or None on timeout, s).

    A new session, so that on timeout the whole group (pytest's spawned workers too) is killed.
    """
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}   (limit {timeout_s:.0f} s)\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(timeout_s, 1.0))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
        f.write(f"[exit {rc}, {time.perf_counter() - t0:.1f} s]\n")
    return rc, time.perf_counter() - t0


def plan_epochs(remaining_s: float, s_per_step: float, steps_per_epoch: int, *, arms: int,
                eval_s_per_arm: float, startup_s: float, max_epochs: int,
                margin: float = 0.85) -> int | None:
    """Most whole epochs per arm such that `arms` arms (train + eval each) fit in
    margin x remaining_s: startup_s + arms x (epochs x steps_per_epoch x s_per_step +
    eval_s_per_arm) <= margin x remaining_s, with s_per_step the timing phase's mean step (the
    margin absorbs the loop's logging, checkpoints and spectra). None when not one epoch fits."""
    per_arm = (margin * remaining_s - startup_s) / arms - eval_s_per_arm
    if per_arm <= 0 or s_per_step <= 0 or steps_per_epoch < 1:
        return None
    epochs = math.floor(per_arm / (s_per_step * steps_per_epoch))
    return min(epochs, max_epochs) if epochs >= 1 else None


class Check:
    def __init__(self, args):
        self.args, self.mode = args, "dry" if args.dry else "gpu"
        self.out, self.work = Path(args.out), Path(args.work)
        self.deadline, self.py = float(args.deadline), sys.executable
        self.log = self.out / "gpu_check.log"
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.mode == "dry":  # the CPU only, even where a GPU is visible: same result anywhere
            self.env["CUDA_VISIBLE_DEVICES"] = ""
        start = float(args.start) if args.start is not None else time.time()
        self.report = gpu_report.Report(self.out, self.mode, start=start,
                                        budget_s=self.deadline - start)

    def remaining(self) -> float:
        return self.deadline - time.time() - RESERVE_S

    def limit(self, phase: str) -> float:
        return min(LIMITS_S[phase][self.mode], self.remaining())

    def run(self) -> int:
        setup = json.loads(Path(self.args.setup_json).read_text())
        self.report.phase("setup", **setup, requirements=gpu_report.requirements(REPO))
        self.report.host(gpu_report.host_info())
        for name, fn in (("cuda_tests", self.cuda_tests), ("timing", self.timing),
                         ("reproduce", self.reproduce)):
            if self.remaining() <= 5:
                self.report.phase(name, status="skipped", note="no time left")
                continue
            try:
                self.report.phase(name, **fn())
            except Exception as err:  # one phase's bug must not lose the others' results
                self.report.phase(name, status="failed", note=f"{type(err).__name__}: {err}")
        return self.report.finish()

    def cuda_tests(self) -> dict:
        junit = self.work / "cuda_tests.xml"
        junit.unlink(missing_ok=True)
        cmd = [self.py, "-m", "pytest", "-q", "-rs", "-m", "cuda", "tests/cuda",
               f"--junitxml={junit}", "-p", "no:cacheprovider"]
        rc, secs = run_logged(cmd, timeout_s=self.limit("cuda_tests"), log=self.log,
                              env=self.env)
        tests = gpu_report.read_junit(junit) if junit.is_file() else []
        counts = {k: sum(t["outcome"] == k for t in tests)
                  for k in ("passed", "failed", "error", "skipped")}
        counts["collected"] = len(tests)
        bad = counts["failed"] or counts["error"] or not tests
        if self.mode == "gpu" and counts["passed"] == 0:
            bad = True  # on a GPU nothing may be skipped wholesale
        status = "timeout" if rc is None else ("failed" if bad or rc != 0 else "ok")
        return {"status": status, "seconds": round(secs, 1), "exit": rc, **counts,
                "tests": tests}

    def timing(self) -> dict:
        path = self.work / "timing.json"
        path.unlink(missing_ok=True)
        cmd = [self.py, "bench/gpu_timing.py", "--json", str(path)] + (
            ["--dry"] if self.mode == "dry" else [])
        rc, secs = run_logged(cmd, timeout_s=self.limit("timing"), log=self.log, env=self.env)
        if rc is None:
            return {"status": "timeout", "seconds": round(secs, 1)}
        if rc != 0 or not path.is_file():
            return {"status": "failed", "seconds": round(secs, 1), "exit": rc}
        t = json.loads(path.read_text())
        ok = t["finite"] and t["images_per_s"] > 0
        return {"status": "ok" if ok else "failed", "seconds": round(secs, 1), **t}

    def _data(self) -> tuple[Path, dict]:
        cfg = REPRO[self.mode]
        given = Path(self.args.data_dir) if self.args.data_dir else None
        if given is not None and (given / gpu_data.BASE / "batches.meta").is_file():
            info = gpu_data.read_info(given) or {"source": "cifar10 (given folder)"}
            return given, {**info, "dir": str(given)}
        root = self.work / "data"
        if root.exists():
            shutil.rmtree(root)
        gpu_data.write_synthetic(root, cfg["train"], cfg["test"])
        note = (f"no CIFAR-10 folder at {given}; " if given is not None else "") + \
            "synthetic class-coloured noise (not CIFAR-10: accuracies say nothing of the paper)"
        return root, {**gpu_data.read_info(root), "dir": str(root), "note": note}

    def reproduce(self) -> dict:
        cfg = REPRO[self.mode]
        data, info = self._data()
        self.report.data(info)
        out = self.work / "repro"
        if out.exists():
            shutil.rmtree(out)
        cmd = [self.py, "-m", "dimcollapse", "reproduce", "table1", "--preset", "cifar",
               "--seeds", "1", "--data-dir", str(data), "--out", str(out), "--quiet",
               "--cache-dir", str(self.work / "cache"), "--batch-size", str(cfg["batch_size"])]
        plan: dict = {"target": "table1", "seeds": 1, "preset": "cifar"}
        if self.mode == "dry":
            cmd += ["--max-steps", "2", "--image-size", "8", "--no-select-l2", "--threads", "1",
                    "--set", 'loop.precision="fp32"']
            plan["max_steps"] = 2
        else:
            timing = self.report.doc["phases"].get("timing", {})
            s_step = timing.get("s_per_step")
            plan["s_per_step"] = s_step or 0.1
            plan["s_per_step_source"] = "timing phase" if s_step else "guess (timing failed)"
            spe = info["train_images"] // cfg["batch_size"]
            epochs = plan_epochs(self.remaining(), plan["s_per_step"], spe, arms=TABLE1_ARMS,
                                 eval_s_per_arm=cfg["eval_s_per_arm"],
                                 startup_s=cfg["startup_s"], max_epochs=cfg["max_epochs"])
            if epochs is None:
                return {"status": "skipped", "note": "not one epoch per arm fits the time left",
                        "plan": plan}
            warmup = round(max(epochs / 10, 1 / spe), 3)  # the preset's 10 of 800 is too long
            cmd += ["--epochs", str(epochs), "--set", f"optim.warmup_epochs={warmup}"]
            plan.update(epochs=epochs, steps_per_epoch=spe, warmup_epochs=warmup)
        plan["command"] = " ".join(cmd[1:])
        rc, secs = run_logged(cmd, timeout_s=self.remaining(), log=self.log, env=self.env)
        result = gpu_report.read_reproduction(out)
        for name in ("results.json", "results.md"):
            if (out / name).is_file():
                shutil.copyfile(out / name, self.out / f"reproduce_{name}")
        status = "timeout" if rc is None else (
            "ok" if rc == 0 and result["complete_arms"] == TABLE1_ARMS else "failed")
        return {"status": status, "seconds": round(secs, 1), "exit": rc, "plan": plan,
                **result}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="where the report goes ($OUT on the device)")
    p.add_argument("--work", required=True, help="scratch folder (runs, checkpoints, data)")
    p.add_argument("--deadline", type=float, required=True, help="end time, seconds since epoch")
    p.add_argument("--start", type=float, help="when the check began (default: now)")
    p.add_argument("--setup-json", required=True, help="the setup phase's record (from the .sh)")
    p.add_argument("--data-dir", help="CIFAR-10 in torchvision's format (bench/gpu_data.py)")
    p.add_argument("--dry", action="store_true", help="CPU, toy sizes, CUDA tests skipped")
    args = p.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    return Check(args).run()


if __name__ == "__main__":
    raise SystemExit(main())
