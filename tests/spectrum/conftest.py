"""Slow references written straight from the formulas (explicit Python loops, float64).

They are fixtures (not an importable module) so the test folders need no __init__.py.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest


def _rows(z, normalize):
    z = np.asarray(z, dtype=np.float64)
    out = []
    for row in z:
        if normalize:
            norm = math.sqrt(sum(float(v) * float(v) for v in row))
            row = row / max(norm, 1e-12)
        out.append(np.array(row, dtype=np.float64))
    return out


def ref_covariance(z, *, normalize, center=True, ddof=0):
    """C = sum_i (z_i - zbar)(z_i - zbar)^T / (N - ddof), one outer product per row (Eqn 1)."""
    rows = _rows(z, normalize)
    n, d = len(rows), rows[0].size
    mean = np.zeros(d)
    for r in rows:
        mean += r
    mean /= n
    c = np.zeros((d, d))
    for r in rows:
        v = r - mean if center else r
        for a in range(d):
            for b in range(d):
                c[a, b] += v[a] * v[b]
    return c / (n - ddof)


def ref_spectrum(z, *, normalize, center=True, ddof=0):
    c = ref_covariance(z, normalize=normalize, center=center, ddof=ddof)
    return np.sort(np.linalg.eigvalsh(c))[::-1]


def ref_rankme(z, eps=1e-7):
    """Garrido et al. 2023: p_k = sigma_k / ||sigma||_1 + eps; exp(-sum p log p)."""
    s = np.linalg.svd(np.asarray(z, dtype=np.float64), compute_uv=False)
    total = sum(float(v) for v in s)
    entropy = 0.0
    for v in s:
        p = float(v) / total + eps
        entropy -= p * math.log(p)
    return math.exp(entropy)


def ref_alpha_req(eigenvalues, first=11, last=100):
    """Weighted LS of log lambda_i on log i, weights 1/i (np.polyfit weights multiply the
    residual, so pass sqrt(1/i)); R^2 unweighted over the same ranks."""
    ev = np.asarray(eigenvalues, dtype=np.float64)
    hi = min(last, ev.size)
    i = np.arange(first, hi + 1, dtype=np.float64)
    y = np.log(ev[first - 1:hi])
    x = np.log(i)
    slope, intercept = np.polyfit(x, y, 1, w=np.sqrt(1.0 / i))
    pred = intercept + slope * x
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    return -slope, r2


def ref_normalized_std(z, ddof=0):
    rows = _rows(z, True)
    n, d = len(rows), rows[0].size
    out = np.zeros(d)
    for j in range(d):
        col = [r[j] for r in rows]
        m = sum(col) / n
        out[j] = math.sqrt(sum((v - m) ** 2 for v in col) / (n - ddof))
    return out


@pytest.fixture
def ref():
    return SimpleNamespace(covariance=ref_covariance, spectrum=ref_spectrum, rankme=ref_rankme,
                           alpha_req=ref_alpha_req, normalized_std=ref_normalized_std)


def embeddings(rng, n, d, *, offset=0.0, decay=0.3, dtype=np.float64):
    """Anisotropic data with a shared mean direction (as SSL embeddings have)."""
    scales = np.exp(-decay * np.arange(d))
    mean = offset * rng.standard_normal(d)
    return (rng.standard_normal((n, d)) * scales + mean).astype(dtype)


@pytest.fixture
def make_embeddings():
    return embeddings
