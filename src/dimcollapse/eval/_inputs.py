"""Checks and conversions shared by the probe and kNN: features (N, d) float, labels (N,) int.

Features may come as numpy arrays or torch tensors of any float dtype on any device; bad input
raises `UserError` naming the problem, since features often come from user files.
"""

from __future__ import annotations

import numpy as np
import torch

from dimcollapse.errors import UserError


def as_features(
    x, name: str, *, device, dtype: torch.dtype, check_finite: bool = True
) -> torch.Tensor:
    """Return `x` as a (N, d) tensor of `dtype` on `device`. Shape: (N, d) -> (N, d).

    `check_finite=False` skips the NaN/inf scan for callers that detect it more cheaply (the
    probe: NaN or inf makes the per-feature statistics non-finite)."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise UserError(
            f"{name} has shape {tuple(t.shape)}: pass a non-empty (N, d) array of features"
        )
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise UserError(f"{name} has dtype {t.dtype}: pass float features")
    t = t.to(device=device, dtype=dtype)
    if check_finite and not torch.isfinite(t).all():
        raise_not_finite(name)
    return t


def raise_not_finite(name: str):
    raise UserError(f"{name} contain NaN or infinite values: check the feature extraction")


def as_labels(y, name: str, n: int, *, device) -> torch.Tensor:
    """Return `y` as a (n,) int64 tensor of non-negative class indices on `device`."""
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise UserError(f"{name} has dtype {t.dtype}: pass integer class indices")
    t = t.to(device=device, dtype=torch.int64).reshape(-1)
    if t.numel() != n:
        raise UserError(f"{name} has {t.numel()} labels for {n} feature rows: pass one per row")
    if n and int(t.min()) < 0:
        raise UserError(f"{name} contains negative class indices: pass labels in 0..C-1")
    return t


def check_same_dim(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise UserError(
            f"{what}: train features are {a.shape[1]}-d but test features are {b.shape[1]}-d; "
            "extract both splits with the same model"
        )


def topk_correct(scores: torch.Tensor, y: torch.Tensor, k: int) -> int:
    """Number of rows whose label is among the k highest scores (ties: lower class first).

    Shape: scores (n, C), y (n,) -> int. A stable descending sort keeps the lower class index
    first among equal scores, so the result never depends on the sort implementation.
    """
    k = min(k, scores.shape[1])
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return int((order == y[:, None]).any(dim=1).sum())
