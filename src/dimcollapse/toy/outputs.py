"""Run a toy experiment and write its files: `<name>.json` (the numbers; a pure function of
config and seed, so equal seeds give byte-identical files), `<name>.meta.json` (provenance:
command, git sha, versions, time) and the PNG figures.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dimcollapse.errors import UserError
from dimcollapse.runinfo import run_metadata, write_json
from dimcollapse.toy import figures
from dimcollapse.toy.depth import DepthConfig, run_depth
from dimcollapse.toy.implicit_reg import ImplicitRegConfig, run_implicit_reg
from dimcollapse.toy.strong_aug import StrongAugConfig, run_strong_aug
from dimcollapse.toy.verify import run_checks

# experiment -> (json name, [(png name, figure function)])
FILES = {
    "strong-aug": ("strong_aug.json", [("strong_aug.png", figures.strong_aug_png)]),
    "implicit-reg": ("implicit_reg.json",
                     [("implicit_reg_alignment.png", figures.alignment_png),
                      ("implicit_reg_trajectories.png", figures.trajectories_png)]),
    "depth": ("depth.json", [("depth.png", figures.depth_png)]),
    "verify": ("verify.json", []),
}


def prepare_out_dir(out_dir: Path) -> Path:
    """Create `out_dir` (before any training, so a bad path fails fast) or raise UserError."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file, not a folder: pass a folder path")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the output folder {out_dir} ({err.strerror}): "
                        "pass a writable --out") from None
    return out_dir


def _write(name: str, result: dict, out_dir: Path) -> list[Path]:
    json_name, pngs = FILES[name]
    write_json(out_dir / json_name, result)
    write_json(out_dir / json_name.replace(".json", ".meta.json"),
               {"experiment": name, "config": result.get("config"), **run_metadata()})
    # figures are drawn from the file as written, exactly what a later reader sees
    loaded = json.loads((out_dir / json_name).read_text())
    for png, draw in pngs:
        draw(loaded, out_dir / png)
    return [out_dir / json_name] + [out_dir / p for p, _ in pngs]


def replot(name: str, out_dir: Path) -> list[Path]:
    """Redraw the PNGs of experiment `name` from out_dir/<name>.json alone (no training)."""
    out_dir = Path(out_dir)
    json_name, pngs = FILES[name]
    path = out_dir / json_name
    if not path.is_file():
        raise UserError(f"no {path} to replot: run `dimcollapse toy {name} --out {out_dir}` "
                        "first, or pass the --out folder that holds it")
    try:
        loaded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read {path} ({err}); rerun the experiment") from None
    for png, draw in pngs:
        draw(loaded, out_dir / png)
    return [out_dir / p for p, _ in pngs]


def strong_aug(cfg: StrongAugConfig, out_dir: Path, *, progress: bool = True) -> list[Path]:
    prepare_out_dir(out_dir)
    return _write("strong-aug", run_strong_aug(cfg, progress=progress), out_dir)


def implicit_reg(cfg: ImplicitRegConfig, out_dir: Path, *, progress: bool = True) -> list[Path]:
    prepare_out_dir(out_dir)
    return _write("implicit-reg", run_implicit_reg(cfg, progress=progress), out_dir)


def depth(cfg: DepthConfig, out_dir: Path, *, progress: bool = True) -> list[Path]:
    prepare_out_dir(out_dir)
    return _write("depth", run_depth(cfg, progress=progress), out_dir)


def verify(seed: int, out_dir: Path | None) -> dict:
    """Run the theory checks; write verify.json when out_dir is given. Returns the result."""
    result: dict[str, Any] = {"experiment": "verify", "config": {"seed": seed},
                              "checks": run_checks(seed)}
    result["passed"] = all(c["passed"] for c in result["checks"])
    if out_dir is not None:
        _write("verify", result, prepare_out_dir(out_dir))
    return result


def run_all(out_dir: Path, *, seed: int = 0, steps: int | None = None, loss: str = "paper",
            reduction: str = "mean", progress: bool = True,
            log: Callable[[str], None] = lambda s: None) -> dict:
    """strong-aug, implicit-reg and depth with paper settings (steps overridable), then verify.
    Returns {"files": [...], "verify_passed": bool}."""
    kw: dict[str, Any] = {"seed": seed, "loss": loss, "reduction": reduction}
    if steps is not None:
        kw["steps"] = steps
    prepare_out_dir(out_dir)
    files = []
    # All three configs are built (and checked) before the first experiment runs.
    experiments = (("strong-aug", functools.partial(strong_aug, StrongAugConfig(**kw))),
                   ("implicit-reg", functools.partial(implicit_reg, ImplicitRegConfig(**kw))),
                   ("depth", functools.partial(depth, DepthConfig(**kw))))
    for name, run in experiments:
        log(f"{name} ...")
        files += run(out_dir, progress=progress)
    log("verify ...")
    res = verify(seed, out_dir)
    files.append(out_dir / FILES["verify"][0])
    return {"files": files, "verify_passed": res["passed"]}
