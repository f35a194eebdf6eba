"""The arms of the paper's Table 1, Table 2 and Fig 12, with the paper's ImageNet top-1 (SPEC §4).

An `Arm` is one pretraining recipe difference: the projector arm and, for the arms that use it,
d0 (the coordinates of r the loss sees). The paper's d0 is 360 of ResNet-50's 2048 (17.6%);
`scaled_d0` keeps that fraction for other representation sizes (ResNet-18: 90 of 512).
"""

from __future__ import annotations

from dataclasses import dataclass

from dimcollapse.catalogue import PROJECTORS, USES_D0, check_d0
from dimcollapse.errors import UserError

PAPER_DIM = 2048  # ResNet-50's representation size (the paper's backbone)
PAPER_D0 = 360  # DirectCLR's d0 in the paper (Section 6)
# ImageNet linear-probe top-1 (%), ResNet-50, 100 epochs: Table 1, Table 2, Appendix F.
PAPER_TOP1 = {
    "mlp": 66.5, "linear": 61.1, "none": 51.5, "directclr": 62.7, "orthogonal": 52.2,
    "diagonal": 60.2, "lowrank": 62.3, "lowrank-diagonal": 62.7, "random-subvector": 43.0,
}
PAPER_SUBVECTOR_TOP1 = 47.9  # DirectCLR, linear probe on r[:, :d0] only (Appendix F)
LABELS = {
    "mlp": "SimCLR, 2-layer projector",
    "linear": "SimCLR, 1-layer linear projector",
    "none": "SimCLR, no projector",
    "directclr": "DirectCLR",
    "orthogonal": "orthogonal projector",
    "diagonal": "trainable diagonal projector",
    "lowrank": "fixed low-rank projector",
    "lowrank-diagonal": "fixed low-rank diagonal projector",
    "random-subvector": "random sub-vector each step",
}
# Fractions of the representation for the d0 sweep (Fig 12): 1/32 .. 1 with the paper's 360/2048;
# at ResNet-18's 512: 16, 32, 64, 90, 128, 256, 384, 512. d0 = D makes DirectCLR "no projector".
D0_FRACTIONS = (1 / 32, 1 / 16, 1 / 8, PAPER_D0 / PAPER_DIM, 1 / 4, 1 / 2, 3 / 4, 1.0)
SWEEP = "d0-sweep"  # DirectCLR over the d0 grid; every other table is a list of arms
# table -> its projector arms, in order; the arms in catalogue.USES_D0 get the table's d0.
# The paper's Table 2 lists no projector and the trainable (linear) projector as references;
# Appendix F adds the random sub-vector arm.
TABLE_ARMS: dict[str, tuple[str, ...]] = {
    "table1": ("mlp", "linear", "none", "directclr"),
    "table2": ("none", "orthogonal", "linear", "diagonal", "lowrank", "lowrank-diagonal",
               "random-subvector"),
}
TABLE_TITLES = {
    "table1": "Table 1: SimCLR projectors and DirectCLR",
    "table2": "Table 2: projector ablations (Section 6, Appendix F)",
    SWEEP: "Fig 12: DirectCLR over d0",
}


@dataclass(frozen=True)
class Arm:
    """One training recipe of the reproduction. `key` names its run folder."""

    projector: str
    d0: int | None = None
    paper_d0: int | None = None  # the d0 equivalent to the paper's 360 of 2048 at this size

    @property
    def key(self) -> str:
        return self.projector if self.d0 is None else f"{self.projector}-d0_{self.d0}"

    @property
    def label(self) -> str:
        base = LABELS.get(self.projector, self.projector)
        return base if self.d0 is None else f"{base} (d0 = {self.d0})"

    @property
    def paper_top1(self) -> float | None:
        """The paper's ImageNet top-1, or None (d0 values the paper reports only in a figure)."""
        if self.projector in USES_D0:
            # Table 1/2 numbers are for d0 = 360 of 2048; other d0 values only appear in Fig 12.
            return PAPER_TOP1.get(self.projector) if self.d0 == self.paper_d0 else None
        return PAPER_TOP1.get(self.projector)

    @property
    def paper_subvector_top1(self) -> float | None:
        """Appendix F's probe of DirectCLR on r[:, :d0] only; reported for the paper's d0 alone."""
        if self.projector == "directclr" and self.d0 == self.paper_d0:
            return PAPER_SUBVECTOR_TOP1
        return None

    def describe(self) -> dict:
        return {"key": self.key, "label": self.label, "projector": self.projector,
                "d0": self.d0, "paper_top1": self.paper_top1}


def scaled_d0(dim: int) -> int:
    """The paper's d0 = 360 of 2048 scaled to a representation of `dim` (512 -> 90)."""
    return max(1, round(dim * PAPER_D0 / PAPER_DIM))


def d0_grid(dim: int) -> list[int]:
    """The d0 values of the sweep for a representation of `dim` coordinates (ascending)."""
    return sorted({max(1, min(dim, round(dim * f))) for f in D0_FRACTIONS})


def tables() -> tuple[str, ...]:
    """Every table `arms_for` knows (registered ones included), in `all`'s order."""
    return (*TABLE_ARMS, SWEEP)


def register_table(name: str, title: str, projectors: tuple[str, ...] | list[str]) -> None:
    """Add a table of projector arms (names of `models.PROJECTORS`, registered ones included)
    that `run_reproduction(name, ...)` trains; it joins `all` too."""
    if name in TABLE_TITLES or name == "all":
        raise ValueError(f"table {name!r} exists already")
    unknown = [p for p in projectors if p not in PROJECTORS]
    if unknown or not projectors:
        raise ValueError(f"table {name!r}: {unknown or 'no arms'}; register the projectors first")
    TABLE_ARMS[name], TABLE_TITLES[name] = tuple(projectors), title


def unregister_table(name: str) -> None:
    """Undo `register_table` (for tests)."""
    TABLE_ARMS.pop(name), TABLE_TITLES.pop(name)


def _arm(projector: str, dim: int, d0: int | None, paper: int) -> Arm:
    if projector in USES_D0:
        return Arm(projector, d0 if d0 is not None else paper, paper)
    return Arm(projector, None, paper)


def arms_for(table: str, dim: int, *, d0: int | None = None,
             grid: list[int] | None = None) -> list[Arm]:
    """The arms of `table` (a name of `tables()`, or `all`) for representation size `dim`.

    d0: DirectCLR's and the low-rank arms' d0 (default: `scaled_d0(dim)`); grid: the d0 values
    of the sweep (default: `d0_grid(dim)`). `all` and a comma list (`table1,table2`) are the
    union, each arm once (in one --out folder the tables share their common arms' runs).
    """
    check_d0(d0, dim)
    grid = d0_grid(dim) if grid is None else sorted(set(grid))
    bad = [g for g in grid if not 1 <= g <= dim]
    if bad:
        raise UserError(f"--d0-grid values {bad} do not fit the {dim}-d representation: "
                        f"pass values in 1..{dim}")
    if table == "all" or "," in table:
        seen: dict[str, Arm] = {}
        for t in tables_of(table):
            for arm in arms_for(t, dim, d0=d0, grid=grid):
                seen.setdefault(arm.key, arm)
        return list(seen.values())
    names: list[tuple[str, int | None]]
    if table == SWEEP:
        names = [("directclr", g) for g in grid]
    elif table in TABLE_ARMS:
        names = [(p, d0) for p in TABLE_ARMS[table]]
    else:
        raise UserError(f"unknown table {table!r}: choose {', '.join(tables())} or all")
    # The arm standing for the paper's d0 = 360 of 2048: --d0 when given, else the scaled value.
    paper = d0 if d0 is not None else scaled_d0(dim)
    return [_arm(p, dim, v, paper) for p, v in names]


def tables_of(table: str) -> tuple[str, ...]:
    """The tables a target names: `all`, one table, or a comma list (table1,table2), checked."""
    if table == "all":
        return tables()
    names = tuple(t.strip() for t in table.split(","))
    bad = [t for t in names if t not in tables()]
    if bad or len(set(names)) != len(names):
        raise UserError(f"unknown or repeated table in {table!r}: choose from "
                        f"{', '.join(tables())} (comma-separated) or all")
    return names
