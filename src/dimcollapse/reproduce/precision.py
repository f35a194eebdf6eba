"""Does the feature precision create or hide collapse? fp32 against bf16 extraction of one arm.

The arm's test-split features r are extracted twice, under fp32 and under bf16 autocast (the
`auto` default on CPUs and GPUs that have it), and measured with the spectrum protocol of
`reproduce` (L2-normalised rows, centred, ddof 0; Eqn 1). Reported: for each precision the
eigenvalue counts below 1e-3 / 1e-4 / 1e-5 of the largest and the smallest measurable
eigenvalue relative to the largest, and the *noise floor*:

    noise_floor = lambda_max(Cov(X_bf16 - X_fp32)) / lambda_max(Cov(X_fp32))

with X the L2-normalised rows (N, D). It is the variance bf16 rounding adds in its strongest
direction, relative to r's top eigenvalue: an eigenvalue of r below it cannot be told apart
from rounding, so a count at a threshold below the floor is not a measurement of collapse.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dimcollapse.reproduce.factors_results import counts_below


def _cov_eigenvalues(x: np.ndarray) -> np.ndarray:
    """Eigenvalues (descending) of the ddof-0 covariance of rows x (N, D), float64."""
    x = x - x.mean(axis=0, keepdims=True)
    return np.linalg.eigvalsh(x.T @ x / x.shape[0])[::-1]


def _rownorm(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def noise_floor(x32: np.ndarray, x16: np.ndarray) -> dict[str, Any]:
    """Spectra of fp32 and bf16 features (N, D) and the noise floor between them (above)."""
    a = _rownorm(np.asarray(x32, dtype=np.float64))
    b = _rownorm(np.asarray(x16, dtype=np.float64))
    ev32, ev16, evd = _cov_eigenvalues(a), _cov_eigenvalues(b), _cov_eigenvalues(b - a)
    max_rank = min(a.shape[0] - 1, a.shape[1])
    out: dict[str, Any] = {"noise_floor": float(evd[0] / ev32[0]) if ev32[0] > 0 else float("nan"),
           "max_rank": int(max_rank)}
    for name, ev in (("fp32", ev32), ("bf16", ev16)):
        out[name] = {"below": counts_below(ev, max_rank),
                     "min_relative": float(ev[max_rank - 1] / ev[0]) if ev[0] > 0 else None,
                     "eigenvalues": [float(v) for v in ev]}
    out["difference_eigenvalues"] = [float(v) for v in evd]
    return out


def precision_check(run_dir: str | os.PathLike, *, cache_dir: str | None = None,
                    batch_size: int = 512, log: Callable[[str], None] = lambda m: None
                    ) -> dict[str, Any]:
    """Extract r of the run's test split under fp32 and bf16; `noise_floor` of the two."""
    from dimcollapse.eval.evaluate import Evaluator
    from dimcollapse.eval.target import data_spec, resolve_target

    target = resolve_target(Path(run_dir))
    spec = data_spec(target, cache_dir=cache_dir)
    feats = {}
    for precision in ("fp32", "bf16"):
        ev = Evaluator(target, spec, cache_dir=None, precision=precision,
                       batch_size=batch_size, log=log)
        feats[precision] = ev.features("test").r.numpy()
        log(f"precision check: {precision} test features {tuple(feats[precision].shape)}")
    out = noise_floor(feats["fp32"], feats["bf16"])
    out["n"], out["dim"] = (int(v) for v in feats["fp32"].shape)
    out["definition"] = ("noise_floor = largest eigenvalue of Cov(X_bf16 - X_fp32) / largest "
                         "eigenvalue of Cov(X_fp32), X = L2-normalised test features r")
    return out
