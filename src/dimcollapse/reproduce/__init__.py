"""Reproducing the paper's Tables 1-2 and Fig 12 under one budget (`dimcollapse reproduce`).

- `arms`: the arms of each table, the paper's ImageNet numbers (SPEC §4), the d0 grid
- `budget`: the training preset + levers shared by every arm, and the evaluation protocol
- `runner`: one arm x seed (train or resume, probe, spectra; reused when complete)
- `pipeline.run_reproduction`: all of them, then results.json / results.md / figures
"""

from dimcollapse.reproduce.arms import PAPER_TOP1, Arm, arms_for, d0_grid, scaled_d0
from dimcollapse.reproduce.budget import Budget, parse_set
from dimcollapse.reproduce.datasets import find_dataset, how_to_get
from dimcollapse.reproduce.pipeline import run_reproduction
from dimcollapse.reproduce.runner import ARM_FILE, ReproductionInterrupted

__all__ = ["ARM_FILE", "PAPER_TOP1", "Arm", "Budget", "ReproductionInterrupted", "arms_for",
           "d0_grid", "find_dataset", "how_to_get", "parse_set", "run_reproduction",
           "scaled_d0"]
