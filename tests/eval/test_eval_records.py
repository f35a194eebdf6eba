"""ProbeRecord.to_dict: probe.json's keys, in the order the file has always had."""

import torch

from dimcollapse.eval import knn_classify, linear_probe
from dimcollapse.eval.records import FeatureInfo, FeatureProvenance, ProbeRecord


def test_probe_record_layout():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=gen), torch.arange(40) % 4
    res = linear_probe(x, y, x, y, num_classes=4)
    kn = knn_classify(x, y, x, y, k=5, num_classes=4)
    info = FeatureInfo(n=40, cache_hit=False, extract_seconds=0.5, cache_file=None)
    rec = ProbeRecord(checkpoint={"path": "c.pt"}, data={"dataset": "cifar10"},
                      features=FeatureProvenance("r", "fp32", info, info), subvector=None,
                      dim=5, linear_probe=res, l2_source="default", l2_selection=None, knn=kn)
    d = rec.to_dict()
    assert list(d) == ["kind", "checkpoint", "data", "features", "subvector", "dim",
                       "linear_probe", "knn"]
    assert d["kind"] == "probe" and d["knn"] == kn.to_dict()
    assert list(d["features"]) == ["space", "precision", "train", "test"]
    assert list(d["features"]["train"]) == ["n", "cache_hit", "extract_seconds", "cache_file"]
    assert list(d["linear_probe"]) == [*res.to_dict(), "l2_source", "l2_selection"]
    assert d["linear_probe"]["l2_selection"] is None
