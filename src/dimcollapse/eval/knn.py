"""Weighted k-nearest-neighbour classifier on frozen features (the standard SSL kNN monitor).

Wu, Xiong, Yu and Lin, "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination" (CVPR 2018), Eqn 9; the same protocol as DINO's `eval_knn` (Caron et al. 2021):
features are L2-normalised, similarity is cosine, the k = 200 most similar train rows vote for
their labels with weight exp(s / tau), tau = 0.07, and the class with the largest summed weight
wins (top-5: the five largest sums). Each test row's weights are computed as
exp((s - s_max) / tau), a common factor per row, so the vote is unchanged while a small tau
cannot overflow float32.

Determinism, ties included: among train rows with equal similarity at the k-th place, the lower
train index is taken; among classes with equal summed weight (0 for classes without a vote),
the lower class index ranks first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from dimcollapse.errors import UserError
from dimcollapse.eval._inputs import as_features, as_labels, check_same_dim, topk_correct

DEFAULT_K = 200
DEFAULT_TEMPERATURE = 0.07


@dataclass(frozen=True)
class KNNResult:
    """Outcome of `knn_classify`. Accuracies in percent (0-100) on the test split."""

    top1: float
    top5: float
    k: int  # as requested
    k_used: int  # min(k, number of train rows)
    temperature: float
    n_train: int
    n_test: int
    num_classes: int
    seconds: float
    predictions: Tensor = field(repr=False)  # (M,) int64 top-1 class per test row

    def to_dict(self) -> dict:
        keys = ["top1", "top5", "k", "k_used", "temperature", "n_train", "n_test",
                "num_classes", "seconds"]
        return {**{k: getattr(self, k) for k in keys}, "accuracy_unit": "percent",
                "similarity": "cosine", "weights": "exp(similarity / temperature)"}


def knn_class_scores(
    train_x: Tensor, train_y: Tensor, query: Tensor, *, k: int, temperature: float,
    num_classes: int,
) -> Tensor:
    """Summed vote weights per class for each query row.

    Shapes: train_x (N, d) and query (m, d), both already L2-normalised; train_y (N,) int64
    -> (m, C). Weights are exp((s - s_max) / temperature) over the top-k similarities s.
    """
    sims = query @ train_x.t()  # (m, N) cosine similarities
    n = sims.shape[1]
    # One extra neighbour shows whether rows tied with the k-th value straddle the cut-off
    # (then topk's choice among them is unspecified): redo just those rows by a stable sort,
    # which takes the lower train index first.
    vals, idx = sims.topk(min(k + 1, n), dim=1)
    ambiguous = (vals[:, k] == vals[:, k - 1]).nonzero().flatten() if k < n else idx[:0, 0]
    vals, idx = vals[:, :k], idx[:, :k]
    if len(ambiguous):
        order = torch.sort(sims[ambiguous], dim=1, descending=True, stable=True).indices[:, :k]
        idx[ambiguous] = order
        vals[ambiguous] = sims[ambiguous].gather(1, order)
    weights = ((vals - vals.max(dim=1, keepdim=True).values) / temperature).exp_()
    scores = torch.zeros(query.shape[0], num_classes, dtype=weights.dtype, device=weights.device)
    return scores.scatter_add_(1, train_y[idx], weights)


def knn_classify(
    train_x,
    train_y,
    test_x,
    test_y,
    *,
    k: int = DEFAULT_K,
    temperature: float = DEFAULT_TEMPERATURE,
    num_classes: int | None = None,
    chunk_rows: int = 256,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> KNNResult:
    """Weighted kNN (module docstring) of each test row against the train rows; top-1 and top-5.

    Shapes: train_x (N, d), train_y (N,), test_x (M, d), test_y (M,); numpy or torch. Test rows
    go through in chunks of `chunk_rows`, so memory is O(chunk_rows * N), not O(M * N). k larger
    than N uses all N train rows (reported as `k_used`).
    """
    if k < 1:
        raise UserError(f"k = {k}: pass a positive number of neighbours (default 200)")
    if not temperature > 0:
        raise UserError(f"temperature = {temperature}: pass a positive value (default 0.07)")
    t0 = time.perf_counter()
    xtr = as_features(train_x, "train features", device=device, dtype=dtype)
    xte = as_features(test_x, "test features", device=device, dtype=dtype)
    check_same_dim(xtr, xte, "kNN")
    ytr = as_labels(train_y, "train labels", xtr.shape[0], device=device)
    yte = as_labels(test_y, "test labels", xte.shape[0], device=device)
    top_label = int(max(ytr.max(), yte.max()))
    c = num_classes or top_label + 1
    if top_label >= c:
        raise UserError(f"labels go up to {top_label} but num_classes = {c}: pass a larger value")
    xtr = F.normalize(xtr, dim=1)
    k_used = min(k, xtr.shape[0])
    preds, correct1, correct5 = [], 0, 0
    for i in range(0, xte.shape[0], chunk_rows):
        q = F.normalize(xte[i : i + chunk_rows], dim=1)
        scores = knn_class_scores(xtr, ytr, q, k=k_used, temperature=temperature, num_classes=c)
        y = yte[i : i + chunk_rows]
        correct1 += topk_correct(scores, y, 1)
        correct5 += topk_correct(scores, y, 5)
        preds.append(scores.argmax(dim=1))  # first maximum: the lower class index on ties
    m = xte.shape[0]
    return KNNResult(
        top1=100.0 * correct1 / m, top5=100.0 * correct5 / m, k=int(k), k_used=k_used,
        temperature=float(temperature), n_train=xtr.shape[0], n_test=m, num_classes=c,
        seconds=time.perf_counter() - t0, predictions=torch.cat(preds),
    )
