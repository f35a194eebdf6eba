"""`report.md` of `dimcollapse demo`, built only from the JSON and PNG files on disk.

The report is a list of sections; each section builder takes the demo folder and returns a
`Section` (or None when its experiment has not been run). Later parts of the demo add their
own builders to `SECTIONS` (or pass a list to `write_report`), without touching these.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dimcollapse.runinfo import atomic_write_bytes
from dimcollapse.toy import readings

TOY_DIR = "toy"  # the toy experiments' files live in DEMO_DIR/toy/


@dataclass
class Section:
    """A report section: a title, reading lines (each computed from results), figures
    (paths relative to the report) and an optional note (settings, caveats)."""

    title: str
    lines: list[str] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    note: str = ""

    def markdown(self) -> str:
        out = [f"## {self.title}", ""]
        if self.note:
            out += [self.note, ""]
        out += [f"- {line}" for line in self.lines]
        out.append("")
        for path, caption in self.images:
            out += [f"![{caption}]({path})", ""]
        return "\n".join(out)


SectionBuilder = Callable[[Path], "Section | None"]


def _load(path: Path) -> dict | None:
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _settings(cfg: dict, keys: tuple[str, ...]) -> str:
    return "Settings: " + ", ".join(f"{k} = {cfg[k]}" for k in keys if k in cfg) + "."


def strong_aug_section(run_dir: Path) -> Section | None:
    res = _load(run_dir / TOY_DIR / "strong_aug.json")
    if res is None:
        return None
    return Section(
        "Strong augmentation collapses dimensions (Fig 3, Theorem 1)",
        readings.strong_aug_readings(res),
        [(f"{TOY_DIR}/strong_aug.png", "Fig 3: singular values of W per noise amplitude k")],
        _settings(res["config"], ("k_values", "steps", "lr", "loss", "reduction", "init",
                                  "batch_size", "seed")),
    )


def implicit_reg_section(run_dir: Path) -> Section | None:
    res = _load(run_dir / TOY_DIR / "implicit_reg.json")
    if res is None:
        return None
    return Section(
        "Implicit regularisation collapses dimensions (Fig 5, 6, Theorems 2-3)",
        readings.implicit_reg_readings(res),
        [(f"{TOY_DIR}/implicit_reg_alignment.png", "Fig 5: alignment matrix |A|"),
         (f"{TOY_DIR}/implicit_reg_trajectories.png",
          "Fig 6: singular values of W1, W2 and the embedding spectrum over training; (d) each "
          "eigenvalue's gap to the largest, with the collapse criterion the count uses")],
        _settings(res["config"], ("lrs", "steps", "noise", "loss", "reduction", "init", "seed")),
    )


def depth_section(run_dir: Path) -> Section | None:
    res = _load(run_dir / TOY_DIR / "depth.json")
    if res is None:
        return None
    return Section(
        "More layers, more collapse (Fig 11, Appendix C)",
        readings.depth_readings(res),
        [(f"{TOY_DIR}/depth.png", "Fig 11: embedding spectrum per depth, linear and ReLU")],
        _settings(res["config"], ("depths", "steps", "lr", "noise", "loss", "reduction", "init",
                                  "seed")),
    )


def verify_section(run_dir: Path) -> Section | None:
    res = _load(run_dir / TOY_DIR / "verify.json")
    if res is None:
        return None
    rows = ["| check | error | tolerance | result |", "|---|---|---|---|"]
    rows += [f"| {c['name']} | {c['error']:.2e} | {c['tolerance']:.0e} | "
             f"{'PASS' if c['passed'] else 'FAIL'} |" for c in res["checks"]]
    return Section("Numeric checks of the theory (Lemma 1-2, Theorems 1-3)",
                   readings.verify_readings(res), [], "\n".join(rows))


def image_section(run_dir: Path) -> Section:
    """Image models: DirectCLR vs no projector (reads DEMO/images/images.json, written by
    `reproduce.demo.run_image_demo`; says how to run it when absent)."""
    res = _load(run_dir / "images" / "images.json")
    title = "Image models: DirectCLR and SimCLR without a projector (Section 6, Fig 7b / 9)"
    if res is None:
        return Section(title, ["not run in this demo folder (`dimcollapse demo --no-images`, "
                               "or an older demo); run `dimcollapse demo` with a CIFAR-10 "
                               "folder (--data-dir or $DIMCOLLAPSE_DATA)"])
    if res.get("status") != "complete":
        return Section(title, [f"not run: {res.get('reason')}", res.get("how_to_get", "")])
    runs = {r["projector"]: r for r in res["runs"]}
    lines = []
    for r in res["runs"]:
        p, s = r["probe"], r["spectrum_r"]
        lines.append(f"{r['label']}: linear-probe top-1 {p['top1']:.2f}% (kNN "
                     f"{p['knn_top1']:.2f}%), {s['collapsed_dims']} of {s['dim']} dimensions of "
                     f"r collapsed, RankMe {s['rankme']:.1f}.")
    d, n = runs.get("directclr"), runs.get("none")
    if d and n:
        dc, nc = d["spectrum_r"]["collapsed_dims"], n["spectrum_r"]["collapsed_dims"]
        if nc > dc:
            lines.append(f"Without a projector r has {nc - dc} more collapsed dimensions than "
                         "with DirectCLR, as the paper's Fig 7b / 9 shows.")
        else:
            lines.append(f"At this short budget the no-projector representation does NOT have "
                         f"more collapsed dimensions than DirectCLR's ({nc} vs {dc}); the "
                         "paper's Fig 7b / 9 is after 100 ImageNet epochs (see "
                         "`dimcollapse reproduce` for longer runs).")
    b = res["budget"]
    note = (f"Settings: preset {b['preset']}, {res['schedule']} steps, training subset "
            f"{b['train_subset']}, probe on {b['probe_subset'] or 'all'} train images, "
            f"seed {res['runs'][0]['seed']}; {res['wall_s']:.0f} s.")
    return Section(title, lines, [(f"images/{res['figure']}",
                                   "representation spectra, test split")], note)


# The demo's sections, in order. Parts added later append their builders here.
SECTIONS: list[SectionBuilder] = [strong_aug_section, implicit_reg_section, depth_section,
                                  verify_section, image_section]


def build_report(run_dir: str | Path, sections: list[SectionBuilder] | None = None) -> str:
    """The Markdown text of the report for the demo folder `run_dir`."""
    run_dir = Path(run_dir)
    built = [b(run_dir) for b in (SECTIONS if sections is None else sections)]
    parts = ["# dimcollapse demo",
             "",
             "Jing, Vincent, LeCun, Tian, *Understanding Dimensional Collapse in Contrastive "
             "Self-supervised Learning* (ICLR 2022). Every reading below is computed from the "
             "result files in this folder; a reading says so when a result disagrees with the "
             "paper.",
             ""]
    meta = _load(run_dir / TOY_DIR / "strong_aug.meta.json")
    if meta:
        parts += [f"Produced by `{meta.get('command')}` at git {meta.get('git_sha')}, "
                  f"{meta.get('utc')}, torch {meta.get('torch')}.", ""]
    parts += [s.markdown() for s in built if s is not None]
    missing = sum(s is None for s in built)
    if missing:
        parts.append(f"({missing} section(s) skipped: their result files are not in "
                     f"{run_dir}.)\n")
    return "\n".join(parts)


def write_report(run_dir: str | Path, sections: list[SectionBuilder] | None = None,
                 name: str = "report.md") -> Path:
    """Write `run_dir/name` atomically and return its path."""
    path = Path(run_dir) / name
    atomic_write_bytes(path, build_report(run_dir, sections).encode())
    return path
