"""Weighted kNN against a slow per-sample reference with explicit loops, ties included."""

from __future__ import annotations

import math

import pytest
import torch

from dimcollapse.errors import UserError
from dimcollapse.eval.knn import knn_classify


def _reference(train_x, train_y, test_x, *, k, temperature, num_classes=None):
    """Per test row: all classes ranked, by loops over plain Python floats (float64)."""
    tr = [[float(v) for v in row] for row in train_x]
    labels = [int(v) for v in train_y]
    out = []
    for q in test_x:
        q = [float(v) for v in q]
        qn = math.sqrt(sum(v * v for v in q))
        sims = []
        for j, row in enumerate(tr):
            rn = math.sqrt(sum(v * v for v in row))
            sims.append((sum(a * b for a, b in zip(q, row, strict=True)) / (qn * rn), j))
        # nearest first; equal similarity: lower train index first
        neighbours = sorted(sims, key=lambda sj: (-sj[0], sj[1]))[: min(k, len(tr))]
        # every class takes part (classes without a vote score 0 and rank after the rest)
        votes = dict.fromkeys(range(num_classes or max(labels) + 1), 0.0)
        for s, j in neighbours:
            votes[labels[j]] += math.exp(s / temperature)
        # largest summed weight first; equal sums: lower class first
        out.append([c for c, _ in sorted(votes.items(), key=lambda cv: (-cv[1], cv[0]))])
    return out


def _accuracy(ranked, y, top):
    return 100.0 * sum(int(y[i]) in r[:top] for i, r in enumerate(ranked)) / len(ranked)


@pytest.mark.parametrize("k, temperature", [(20, 0.07), (7, 0.5), (1, 0.07)])
def test_matches_loop_reference(k, temperature):
    g = torch.Generator().manual_seed(k)
    centres = torch.randn(7, 16, generator=g, dtype=torch.float64)
    train_y = torch.randint(0, 7, (300,), generator=g)
    test_y = torch.randint(0, 7, (60,), generator=g)
    train_x = centres[train_y] + 1.5 * torch.randn(300, 16, generator=g, dtype=torch.float64)
    test_x = centres[test_y] + 1.5 * torch.randn(60, 16, generator=g, dtype=torch.float64)
    ranked = _reference(train_x, train_y, test_x, k=k, temperature=temperature)
    res = knn_classify(train_x, train_y, test_x, test_y, k=k, temperature=temperature,
                       chunk_rows=16, dtype=torch.float64)
    assert res.predictions.tolist() == [r[0] for r in ranked]
    assert res.top1 == pytest.approx(_accuracy(ranked, test_y, 1))
    assert res.top5 == pytest.approx(_accuracy(ranked, test_y, 5))
    assert 0 < res.top1 < 100  # the data is neither trivial nor hopeless
    res32 = knn_classify(train_x, train_y, test_x, test_y, k=k, temperature=temperature)
    assert res32.predictions.tolist() == res.predictions.tolist()


def test_vote_and_neighbour_ties_are_broken_by_index():
    v, w = [1.0, 0.0], [0.0, 1.0]
    # rows 0-2 tie at similarity 1 for the query v; k = 2 must take rows 0 and 1 (classes 3, 1)
    # whose equal votes then go to the lower class, 1. Taking row 2 (class 0) would give 0.
    train_x = torch.tensor([v, v, v, w, w], dtype=torch.float64)
    train_y = torch.tensor([3, 1, 0, 2, 2])
    res = knn_classify(train_x, train_y, torch.tensor([v]), torch.tensor([1]), k=2)
    assert res.predictions.tolist() == [1] and res.top1 == 100.0
    assert _reference(train_x, train_y, [v], k=2, temperature=0.07)[0][0] == 1
    # many rows tied at the cut-off (torch.topk alone picks among them arbitrarily): 300
    # copies of v labelled i % 7; k = 5 must take rows 0-4, whose classes 0-4 tie -> class 0
    many_x = torch.tensor([v] * 300 + [w], dtype=torch.float64)
    many_y = torch.cat([torch.arange(300) % 7, torch.tensor([6])])
    res = knn_classify(many_x, many_y, torch.tensor([v, v]), torch.tensor([0, 5]), k=5)
    assert res.predictions.tolist() == [0, 0] and res.top5 == 50.0  # class 5 got no vote
    assert _reference(many_x, many_y, [v], k=5, temperature=0.07)[0][:6] == [0, 1, 2, 3, 4, 5]
    # top-5 among tied sums ranks lower classes first: query w ties classes 2 and 5 at k = 2
    train_y2 = torch.tensor([3, 1, 0, 5, 2])
    res = knn_classify(train_x, train_y2, torch.tensor([w]), torch.tensor([5]), k=2)
    assert res.predictions.tolist() == [2] and res.top1 == 0.0 and res.top5 == 100.0


def test_k_larger_than_train_set_uses_every_row():
    g = torch.Generator().manual_seed(1)
    train_x, test_x = torch.randn(15, 4, generator=g), torch.randn(10, 4, generator=g)
    train_y, test_y = torch.arange(15) % 3, torch.arange(10) % 3
    big = knn_classify(train_x, train_y, test_x, test_y, k=200)
    exact = knn_classify(train_x, train_y, test_x, test_y, k=15)
    assert big.k == 200 and big.k_used == 15
    assert big.predictions.tolist() == exact.predictions.tolist() and big.top1 == exact.top1
    ranked = _reference(train_x, train_y, test_x, k=200, temperature=0.07)
    assert big.predictions.tolist() == [r[0] for r in ranked]


def test_chunking_and_row_scale_do_not_matter():
    g = torch.Generator().manual_seed(2)
    train_x, test_x = torch.randn(500, 8, generator=g), torch.randn(97, 8, generator=g)
    train_y, test_y = torch.randint(0, 5, (500,), generator=g), torch.randint(0, 5, (97,))
    a = knn_classify(train_x, train_y, test_x, test_y, k=30, chunk_rows=1)
    b = knn_classify(train_x, train_y, test_x, test_y, k=30, chunk_rows=1000)
    scale = torch.rand(500, 1, generator=g) * 10 + 0.1  # cosine: row norms are irrelevant
    c = knn_classify(train_x * scale, train_y, test_x * 3.0, test_y, k=30)
    assert a.predictions.tolist() == b.predictions.tolist() == c.predictions.tolist()
    assert a.to_dict() | {"seconds": 0} == b.to_dict() | {"seconds": 0}


def test_small_temperature_does_not_overflow():
    g = torch.Generator().manual_seed(3)
    train_x, test_x = torch.randn(200, 6, generator=g), torch.randn(40, 6, generator=g)
    train_y, test_y = torch.randint(0, 4, (200,), generator=g), torch.randint(0, 4, (40,))
    res = knn_classify(train_x, train_y, test_x, test_y, k=10, temperature=1e-3)
    # tau -> 0 is a plain vote of the single nearest neighbour
    nearest = (torch.nn.functional.normalize(test_x, dim=1)
               @ torch.nn.functional.normalize(train_x, dim=1).t()).argmax(1)
    assert res.predictions.tolist() == train_y[nearest].tolist()


def test_bad_input():
    x, y = torch.randn(10, 3), torch.arange(10) % 2
    with pytest.raises(UserError, match="k = 0"):
        knn_classify(x, y, x, y, k=0)
    with pytest.raises(UserError, match="temperature"):
        knn_classify(x, y, x, y, temperature=0.0)
    with pytest.raises(UserError, match="3-d"):
        knn_classify(x, y, x[:, :2], y)
