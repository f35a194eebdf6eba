"""Typed records of an evaluation: what probe.json holds (`ProbeRecord`) and feature provenance.

`Evaluator.probe` returns a `ProbeRecord`; `to_dict()` gives probe.json's keys (docs/
evaluation.md) in order, the writer adds `metadata`. Readers use the attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dimcollapse.eval.features import Features
from dimcollapse.eval.knn import KNNResult
from dimcollapse.eval.l2_select import L2Selection
from dimcollapse.eval.probe import ProbeResult
from dimcollapse.records import Record, plain


@dataclass(frozen=True)
class FeatureInfo(Record):
    """Where one split's features came from: rows, cache hit, extraction time, cache file."""

    n: int
    cache_hit: bool
    extract_seconds: float
    cache_file: str | None

    @classmethod
    def of(cls, feats: Features) -> FeatureInfo:
        return cls(n=int(len(feats.targets)), cache_hit=feats.cache_hit,
                   extract_seconds=round(feats.seconds, 3),
                   cache_file=None if feats.path is None else str(feats.path))


@dataclass(frozen=True)
class FeatureProvenance(Record):
    """The `features` entry of probe.json: the space probed, autocast precision, both splits."""

    space: str
    precision: str
    train: FeatureInfo
    test: FeatureInfo


@dataclass(frozen=True)
class ProbeRecord(Record):
    """Linear probe (and kNN) of one target: probe.json without `metadata`.

    JSON layout (`to_dict`): kind "probe", checkpoint, data, features, subvector, dim,
    linear_probe = the `ProbeResult` keys + l2_source + l2_selection, knn (or None).
    """

    checkpoint: dict[str, Any]
    data: dict[str, Any]
    features: FeatureProvenance
    subvector: int | None
    dim: int
    linear_probe: ProbeResult
    l2_source: str  # "default" | "--l2" | "select_l2 (10% of train held out)"
    l2_selection: L2Selection | None
    knn: KNNResult | None

    KIND = "probe"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.KIND,
            "checkpoint": plain(self.checkpoint),
            "data": plain(self.data),
            "features": self.features.to_dict(),
            "subvector": self.subvector,
            "dim": self.dim,
            "linear_probe": {**self.linear_probe.to_dict(), "l2_source": self.l2_source,
                             "l2_selection": plain(self.l2_selection)},
            "knn": plain(self.knn),
        }
