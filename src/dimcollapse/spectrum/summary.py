"""`SpectrumSummary`: everything `SpectrumAccumulator.summary()` measures, as one typed record.

Its fields, in order, are the keys of spectrum.json (docs/spectrum.md), followed there by
`source` (where the rows came from, set by the command that measured them) and `metadata`
(added by the writer). To add a metric: declare its field below and compute it in `summarize`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dimcollapse.records import Record
from dimcollapse.spectrum import metrics
from dimcollapse.spectrum.verdict import COMPLETE_COLLAPSE_THRESHOLD, Verdict, collapse_verdict

if TYPE_CHECKING:
    from dimcollapse.spectrum.accumulator import SpectrumAccumulator


@dataclass(frozen=True)
class SpectrumSummary(Record):
    """The covariance spectrum (Eqn 1) of N rows and the collapse metrics (spectrum/metrics.py).

    eigenvalues: (dim,) descending, of the covariance divided by n - ddof; max_rank: the most
    nonzero eigenvalues n rows can give (min(n - 1, dim) centred, min(n, dim) not);
    unmeasured_dims: dim - max_rank, directions n rows cannot span (their eigenvalues are 0
    whatever the model does); collapsed_dims: among the max_rank measurable eigenvalues, those
    below threshold x the largest (so N <= d rows are not reported as collapse);
    rankme / alpha_req*: on the first raw_samples raw rows (None when not tracked);
    normalized_std*: per-dimension std of the L2-normalised rows (SimSiam).
    Appended later (so the older keys keep their order): effective_rank: Roy & Vetterli's
    erank of the covariance C, i.e. of `eigenvalues` (p_k = lambda_k / sum lambda); nesum:
    sum lambda_k / lambda_1 (He & Ozay 2022); both None when every eigenvalue is 0;
    normalized_total_variance: T = trace Cov(z_i / ||z_i||) (ddof 0), in [0, 1];
    collapse: `verdict.collapse_verdict` ("complete" when T < complete_threshold, else
    "dimensional" when collapsed_dims > 0, else "none").
    """

    n: int
    dim: int
    normalize: bool
    center: bool
    ddof: int
    precision: str
    eigenvalues: tuple[float, ...]
    max_rank: int
    unmeasured_dims: int
    collapsed_dims: int
    threshold: float
    rankme: float | None
    rankme_eps: float
    raw_samples: int
    raw_max_samples: int | None
    alpha_req: float | None
    alpha_req_r2: float | None
    alpha_req_fit: metrics.AlphaReQ | None
    normalized_std: metrics.StdSummary
    normalized_std_per_dim: tuple[float, ...]
    effective_rank: float | None
    nesum: float | None
    normalized_total_variance: float
    complete_threshold: float
    collapse: Verdict
    source: dict[str, Any] | None = None  # set by `with_source`; not part of summary()

    OMIT_IF_NONE = ("source",)

    def with_source(self, source: dict[str, Any]) -> SpectrumSummary:
        """This summary with `source` (file, checkpoint, split ...) set."""
        return dataclasses.replace(self, source=source)


def summarize(acc: SpectrumAccumulator, *, ddof: int = 0,
              rel_threshold: float = metrics.COLLAPSE_REL_THRESHOLD) -> SpectrumSummary:
    """The summary of what `acc` has seen (see `SpectrumAccumulator.summary`)."""
    ev = acc.eigenvalues(ddof)
    max_rank = max(0, min(acc.n - (1 if acc.center else 0), acc.dim))
    aq = acc.alpha_req()
    std = acc.normalized_std(ddof)
    # T is defined with ddof = 0 (verdict.py): sum_k std_k^2 of the L2-normalised rows.
    std0 = std if ddof == 0 else acc.normalized_std(0)
    total_var = float(np.sum(std0 * std0))
    defined = bool(ev.max(initial=0.0) > 0)  # erank and NESum are undefined for C = 0
    return SpectrumSummary(
        n=acc.n,
        dim=acc.dim,
        normalize=acc.normalize,
        center=acc.center,
        ddof=ddof,
        precision=acc.precision,
        eigenvalues=tuple(float(v) for v in ev),
        max_rank=max_rank,
        unmeasured_dims=acc.dim - max_rank,
        collapsed_dims=metrics.collapsed_dims(ev[:max_rank], rel_threshold),
        threshold=rel_threshold,
        rankme=acc.rankme(),
        rankme_eps=metrics.RANKME_EPS,
        raw_samples=acc.raw_n,
        raw_max_samples=acc.raw_max_samples,
        alpha_req=None if aq is None else aq.alpha,
        alpha_req_r2=None if aq is None else aq.r2,
        alpha_req_fit=aq,
        normalized_std=metrics.std_summary(std),
        normalized_std_per_dim=tuple(float(v) for v in std),
        # erank of C itself (its singular values are its eigenvalues), not of the rows.
        effective_rank=metrics.effective_rank_from_singular_values(ev) if defined else None,
        nesum=metrics.nesum(ev) if defined else None,
        normalized_total_variance=total_var,
        complete_threshold=COMPLETE_COLLAPSE_THRESHOLD,
        collapse=collapse_verdict(ev, total_var, n_rows=acc.n, rel_threshold=rel_threshold,
                                  center=acc.center),
    )
