"""The GPU check's report: DIR/gpu_check.json (everything) and DIR/gpu_check.md (the summary),
rewritten atomically after every phase; plus readers of what the phases leave behind."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

FORMAT = "dimcollapse-gpu-check"
PHASES = ("setup", "cuda_tests", "timing", "reproduce")
GOOD = ("ok", "skipped")


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


class Report:
    def __init__(self, out: Path, mode: str, *, start: float, budget_s: float):
        """start: when the check began (seconds since the epoch; elapsed_s counts from it)."""
        self.out, self.t0 = Path(out), start
        self.doc = {"format": FORMAT, "version": 1, "mode": mode,
                    "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                    "budget_s": round(budget_s, 1), "status": "running", "host": {},
                    "data": {}, "phases": {}}
        self.write()

    def host(self, info: dict) -> None:
        self.doc["host"] = info
        self.write()

    def data(self, info: dict) -> None:
        self.doc["data"] = info
        self.write()

    def phase(self, name: str, **record) -> None:
        self.doc["phases"][name] = record
        self.write()

    def finish(self) -> int:
        """Final status: ok when every phase is ok (or skipped for want of time); exit code."""
        phases = self.doc["phases"]
        bad = [n for n in PHASES if phases.get(n, {}).get("status") not in GOOD]
        self.doc["status"] = "ok" if not bad else "failed: " + ", ".join(bad)
        self.write()
        return 0 if not bad else 1

    def write(self) -> None:
        self.doc["elapsed_s"] = round(time.time() - self.t0, 1)
        _atomic_text(self.out / "gpu_check.json", json.dumps(self.doc, indent=1) + "\n")
        _atomic_text(self.out / "gpu_check.md", markdown(self.doc))


def _f(v, fmt=".1f") -> str:
    return "-" if v is None else format(v, fmt)


def markdown(doc: dict) -> str:
    ph, host = doc["phases"], doc.get("host", {})
    lines = [f"# GPU check ({doc['mode']} mode)", "",
             f"Started {doc['started_utc']}, {doc.get('elapsed_s', 0)} s of a "
             f"{doc['budget_s']} s budget; status: **{doc['status']}**.", "",
             f"Host: {host.get('device_names') or 'no CUDA device'}; torch "
             f"{host.get('torch', '?')} (CUDA {host.get('torch_cuda')}), Python "
             f"{host.get('python', '?')}.", ""]
    if doc["mode"] == "dry":
        lines += ["Dry mode: the CPU at toy sizes; it proves the script, not the GPU. "
                  "Its speeds are not the GPU's.", ""]
    lines += ["| phase | status | seconds | detail |", "|---|---|---|---|"]
    for name in PHASES:
        p = ph.get(name)
        if p is None:
            lines.append(f"| {name} | not run | - | |")
            continue
        lines.append(f"| {name} | {p.get('status')} | {p.get('seconds', '-')} | "
                     f"{_detail(name, p)} |")
    t = ph.get("timing", {})
    if t.get("images_per_s"):
        w = t["workload"]
        lines += ["", "## The `cifar` preset's step", "",
                  f"{w['backbone']} ({w['stem']} stem), {w['projector']} projector, {w['loss']}, "
                  f"{w['optimizer']}, batch {w['batch_size']}, {w['image_size']} px, "
                  f"{w['precision']}, channels_last {w['channels_last']}, images resident on "
                  f"{w['resident_images_on']} ({w['data']}).", "",
                  "| images/s | s/step | s/epoch (50000 images) | views alone, images/s | "
                  "peak GPU memory, GiB | timed steps |", "|---|---|---|---|---|---|",
                  f"| {t['images_per_s']:.0f} | {t['s_per_step']:.4f} | {t['epoch_s']:.2f} | "
                  f"{t['views_images_per_s']:.0f} | {_f(t.get('max_memory_gib'), '.2f')} | "
                  f"{t['timed_steps']} |"]
    c = ph.get("cuda_tests", {})
    if c.get("tests"):
        lines += ["", "## CUDA tests", "", "| test | outcome | s |", "|---|---|---|"]
        lines += [f"| {x['name']} | {x['outcome']} | {x['seconds']:.1f} |" for x in c["tests"]]
    r = ph.get("reproduce", {})
    if r.get("arms"):
        d = doc.get("data", {})
        lines += ["", "## Short reproduction (table1, one seed)", "",
                  f"Data: {d.get('source')} ({d.get('train_images')} train / "
                  f"{d.get('test_images')} test images). {d.get('note', '')}", "",
                  f"`{r['plan'].get('command', '')}`", "",
                  "| arm | top-1 | kNN top-1 | RankMe r | collapsed dims r | train images/s |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {a['key']} | {_f(a['top1'], '.2f')} | {_f(a['knn_top1'], '.2f')} | "
                  f"{_f(a['rankme_r'])} | {a['collapsed_dims_r']} | "
                  f"{_f(a['train_images_per_s'], '.0f')} |" for a in r["arms"]]
        lines += [""] + [f"- {x}" for x in r.get("findings", [])]
    return "\n".join(lines) + "\n"


def _detail(name: str, p: dict) -> str:
    if p.get("note"):
        return str(p["note"]).replace("|", "/")[:200]
    if name == "setup":
        return f"{p.get('method')}, dimcollapse from {p.get('dimcollapse')}"
    if name == "cuda_tests":
        return (f"{p.get('collected', 0)} collected: {p.get('passed', 0)} passed, "
                f"{p.get('skipped', 0)} skipped, {p.get('failed', 0)} failed, "
                f"{p.get('error', 0)} errors")
    if name == "timing" and p.get("images_per_s"):
        return f"{p['images_per_s']:.0f} images/s, {p['epoch_s']:.2f} s/epoch"
    if name == "reproduce":
        return f"{p.get('complete_arms', 0)} of 4 arms complete"
    return ""


def read_junit(path: Path) -> list[dict]:
    """pytest's JUnit XML -> [{name, outcome (passed/failed/error/skipped), seconds, message}]."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            el = case.find(tag)
            if el is not None:
                outcome, message = name, (el.get("message") or "")[:300]
                break
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        out.append({"name": f"{cls}::{case.get('name')}", "outcome": outcome,
                    "seconds": float(case.get("time") or 0.0), "message": message})
    return out


def read_reproduction(out: Path) -> dict:
    """Per-arm headline numbers from the arms completed so far (a cut-short run keeps those)."""
    arms = []
    for path in sorted(Path(out).glob("runs/*/seed*/reproduce_arm.json")):
        rec = json.loads(path.read_text())
        probe, spec = rec.get("probe") or {}, rec.get("spectrum_r") or {}
        arms.append({"key": rec["key"], "label": rec.get("label"), "top1": probe.get("top1"),
                     "knn_top1": probe.get("knn_top1"), "rankme_r": spec.get("rankme"),
                     "collapsed_dims_r": spec.get("collapsed_dims"),
                     "train_images_per_s": rec.get("train", {}).get("images_per_s"),
                     "train_steps": rec.get("train", {}).get("steps"),
                     "wall_s": rec.get("wall_s")})
    results = Path(out) / "results.json"
    findings = json.loads(results.read_text())["findings"]["lines"] if results.is_file() else []
    return {"complete_arms": len(arms), "arms": arms, "findings": findings,
            "results_json": results.is_file()}


def requirements(repo: Path) -> dict:
    """Installed version of each of pyproject's dependencies (+ pytest) and whether it fits."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return {"note": "tomllib unavailable (Python < 3.11): not checked"}
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + ["pytest"]
    try:
        from packaging.requirements import Requirement
    except ImportError:
        Requirement = None
    out = {}
    for spec in specs:
        name = re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = {"spec": spec, "version": None, "ok": False}
            continue
        ok = None if Requirement is None else Requirement(spec).specifier.contains(
            version, prereleases=True)
        out[name] = {"spec": spec, "version": version, "ok": ok}
    return out


def host_info() -> dict:
    import torch

    info = {"python": platform.python_version(), "platform": platform.platform(),
            "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(),
            "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0}
    if info["cuda_available"]:
        info["device_names"] = [torch.cuda.get_device_name(i)
                                for i in range(info["device_count"])]
        info["capability"] = list(torch.cuda.get_device_capability(0))
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    if shutil.which("nvidia-smi"):
        try:
            q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                "--format=csv,noheader"], capture_output=True, text=True,
                               timeout=15)
            info["nvidia_smi"] = q.stdout.strip().splitlines()
        except (OSError, subprocess.TimeoutExpired) as err:
            info["nvidia_smi"] = [f"failed: {err}"]
    return info
