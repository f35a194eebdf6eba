"""One progress reporter for long loops: a tqdm bar on a terminal, plain lines in a log.

When stderr is a terminal the loop shows a `tqdm` bar. When it is not (a log file, a batch job,
`nohup`), a bar would write nothing useful, so a plain line is printed every `interval_s` of
wall-clock time instead:

    dimcollapse train: step 120/400 (30%), loss 5.1234, 812 images/s, ETA 2m10s

With `quiet` nothing is shown. The interval is a parameter; its default is 30 s, or the value
of the environment variable DIMCOLLAPSE_PROGRESS_S (seconds) when set. The rate and ETA count
only this process's work (a resumed run starts its clock at the step it resumed from).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

DEFAULT_INTERVAL_S = 30.0  # log lines: often enough to see a run move, rare enough to read
INTERVAL_ENV = "DIMCOLLAPSE_PROGRESS_S"


def default_interval_s() -> float:
    """DIMCOLLAPSE_PROGRESS_S when set to a number >= 0, else DEFAULT_INTERVAL_S."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, ""))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def format_duration(seconds: float) -> str:
    """3725 -> '1h02m', 130 -> '2m10s', 7.4 -> '7s'."""
    s = int(round(max(seconds, 0.0)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Progress:
    """Progress of `total` units (steps, images) from `initial`; call `update` after each piece.

    prefix: start of each plain line ("dimcollapse train"). unit: what `total` counts ("step").
    rate_unit: what `update(items=...)` counts for the rate ("images"; None: the units).
    quiet: show nothing. interval_s: seconds between plain lines (tests pass a tiny one).
    stream: where to write (stderr). clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, total: int, *, prefix: str, unit: str = "step", initial: int = 0,
                 rate_unit: str | None = None, quiet: bool = False,
                 interval_s: float | None = None, stream: TextIO | None = None,
                 desc: str | None = None, leave: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.done, self.initial = int(total), int(initial), int(initial)
        self.prefix, self.unit, self.rate_unit = prefix, unit, rate_unit
        self.stream = sys.stderr if stream is None else stream
        self.interval_s = default_interval_s() if interval_s is None else float(interval_s)
        self.clock = clock
        self.mode = "off" if quiet else ("bar" if is_terminal(self.stream) else "lines")
        self.items = 0
        self.fields: dict[str, Any] = {}
        self.t0 = self.last = clock()
        self.bar = None
        if self.mode == "bar":
            # tqdm: only for a bar on a terminal (cli modules import progress at --help)
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.initial, unit=unit, desc=desc,
                            dynamic_ncols=True, file=self.stream, leave=leave)

    def update(self, n: int = 1, *, items: int = 0, **fields: Any) -> None:
        """`n` more units done (and `items` more of rate_unit); `fields` (loss=..., shown with
        4 decimals when float) are shown next to the bar or on the next line."""
        self.done += n
        self.items += items
        self.fields.update(fields)
        if self.bar is not None:
            self.bar.update(n)
            if fields:
                self.bar.set_postfix({k: _fmt(v) for k, v in fields.items()}, refresh=False)
        elif self.mode == "lines":
            now = self.clock()
            if now - self.last >= self.interval_s and self.done < self.total:
                self.last = now
                print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None) -> str:
        """The plain progress line for the current state."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.t0, 1e-9)
        pct = 100.0 * self.done / max(self.total, 1)
        parts = [f"{self.unit} {self.done}/{self.total} ({pct:.0f}%)"]
        parts += [f"{k} {_fmt(v)}" for k, v in self.fields.items()]
        count, what = (self.items, self.rate_unit) if self.rate_unit else \
            (self.done - self.initial, f"{self.unit}s")
        parts.append(f"{count / elapsed:.0f} {what}/s" if count / elapsed >= 10
                     else f"{count / elapsed:.2f} {what}/s")
        made = self.done - self.initial
        if made > 0:
            parts.append(f"ETA {format_duration((self.total - self.done) * elapsed / made)}")
        return f"{self.prefix}: " + ", ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
