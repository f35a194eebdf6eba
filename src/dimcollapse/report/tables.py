"""Plain tables: Markdown text and CSV files (written atomically)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence

from dimcollapse.runinfo import atomic_write_bytes


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                   align: Sequence[str] | None = None) -> str:
    """A GitHub Markdown table; align: one of "l", "r" per column (default: left)."""
    def cell(v: object) -> str:
        return "–" if v is None else str(v).replace("|", "\\|")

    align = align or ["l"] * len(headers)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: str | os.PathLike, headers: Sequence[str],
              rows: Sequence[Sequence[object]]) -> None:
    """CSV with a header line; None is written as an empty field."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    for row in rows:
        w.writerow(["" if v is None else v for v in row])
    atomic_write_bytes(path, buf.getvalue().encode())


def fmt_mean_std(s: dict | None, digits: int = 2) -> str:
    """'52.10 ± 0.31' from {"mean", "std"} (std None: '52.10'); '–' when s is None."""
    if s is None:
        return "–"
    if s.get("std") is None:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"
