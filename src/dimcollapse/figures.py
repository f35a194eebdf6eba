"""Matplotlib plumbing shared by every figure: headless backend and atomic, repeatable PNGs."""

from __future__ import annotations

import io
import os
from pathlib import Path

from dimcollapse.runinfo import atomic_write_bytes


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """Write `fig` as PNG to `path` atomically and close it.

    No timestamp or software tag goes into the PNG metadata, so the same numbers give the
    same bytes (a figure can be diffed like the JSON next to it).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, **savefig_kwargs)
    pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
