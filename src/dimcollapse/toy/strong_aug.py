"""Fig 3: dimensional collapse caused by strong augmentation (Section 4, Theorem 1).

One bias-free 16x16 linear layer z = W x, views x + k eps on dims 8-15 only, lr 0.001, batch
128 from 10,000 Gaussian samples, 10,000 plain-SGD steps; the whole k sweep is one batched run.
Theorem 1: where the augmentation covariance outweighs the data covariance (X = S0 - S1 has
negative eigenvalues) the corresponding singular values of W vanish.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from dimcollapse.errors import UserError
from dimcollapse.toy import data
from dimcollapse.toy.measure import XProbe, eval_inputs, run_spectra, singular_values
from dimcollapse.toy.nets import LinearStack, init_layers
from dimcollapse.toy.settings import ToySettings, validate_common
from dimcollapse.toy.train import single_threaded, train

NOISY_FROM = 8  # dims 8-15 are augmented, 0-7 are not


@dataclass(frozen=True)
class StrongAugConfig(ToySettings):
    """Paper/official settings of Fig 3 (SPEC §3)."""

    k_values: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
    lr: float = 0.001
    init: str = "orthogonal"
    x_probe_batches: int = 16


def validate(cfg: StrongAugConfig) -> None:
    if not cfg.k_values:
        raise UserError("no noise amplitude given: pass one or more values to --k")
    if any(k < 0 for k in cfg.k_values):
        raise UserError("noise amplitudes must be >= 0: fix --k")
    validate_common(cfg, lr=cfg.lr, init=cfg.init)


def column_norms(w: np.ndarray) -> tuple[float, float]:
    """Frobenius norms of W's clean columns (0-7) and noisy columns (8-15): (clean, noisy)."""
    return (float(np.linalg.norm(w[:, :NOISY_FROM])), float(np.linalg.norm(w[:, NOISY_FROM:])))


def run_strong_aug(cfg: StrongAugConfig = StrongAugConfig(), *, progress: bool = True) -> dict:
    """Train the whole k sweep as one batched computation; return the JSON-ready result."""
    validate(cfg)
    dtype = getattr(torch, cfg.dtype)
    r = len(cfg.k_values)
    seeds = [cfg.seed] * r  # common random numbers: runs differ only in k
    amp = torch.stack([data.strong_aug_amplitude(k, cfg.dim, NOISY_FROM) for k in cfg.k_values])
    with single_threaded():
        net = LinearStack(init_layers(seeds, 1, cfg.dim, cfg.init, dtype))
        batches = data.ViewBatches(seeds, amp, n_samples=cfg.n_samples,
                                   batch_size=cfg.batch_size, dtype=dtype)
        probe = XProbe(seeds, amp, n_batches=cfg.x_probe_batches, n_samples=cfg.n_samples,
                       batch_size=cfg.batch_size)
        w_start = net.weights[0].double().clone()
        x_start = probe.eigenvalues(w_start, cfg.loss)
        steps, svs = [], []

        def record(step: int) -> None:
            steps.append(step)
            svs.append(singular_values(net.weights[0]))

        train(net, batches, loss=cfg.loss, lr=torch.full((r,), cfg.lr), steps=cfg.steps,
              record_every=cfg.record_every, on_record=record, reduction=cfg.reduction,
              progress=progress,
              desc="strong-aug")
        w_end = net.weights[0].double().clone()
        x_end = probe.eigenvalues(w_end, cfg.loss)
        spectra = run_spectra(net, eval_inputs(cfg.seed, cfg.eval_samples, cfg.dim))
    traj = np.stack(svs, 1)  # (R, T, d)
    runs = []
    for i, k in enumerate(cfg.k_values):
        ws, we = w_start[i].numpy(), w_end[i].numpy()
        (c0, n0), (c1, n1) = column_norms(ws), column_norms(we)
        runs.append({
            "k": float(k),
            "weight_start": ws.tolist(),
            "weight_end": we.tolist(),
            "sv_start": traj[i, 0].tolist(),
            "sv_end": traj[i, -1].tolist(),
            "sv_trajectory": traj[i].tolist(),
            "x_eigenvalues_start": x_start[i].tolist(),
            "x_eigenvalues_end": x_end[i].tolist(),
            "embedding_spectrum": spectra[i].tolist(),
            "clean_col_norm_start": c0, "noisy_col_norm_start": n0,
            "clean_col_norm_end": c1, "noisy_col_norm_end": n1,
            "clean_over_noisy_end": c1 / n1 if n1 > 0 else None,
            "x_negative_start": int((x_start[i] < 0).sum()),
            "x_negative_end": int((x_end[i] < 0).sum()),
        })
    return {
        "experiment": "strong-aug",
        "figure": "Fig 3",
        "config": asdict(cfg),
        "trajectory_steps": steps,
        "noisy_dims": list(range(NOISY_FROM, cfg.dim)),
        "x_definition": ("Lemma 2: X = S0 - S1" if cfg.loss == "paper" else
                         "X_off with dL/dW = -W X_off for the official loss") +
                        " (loss summed over the batch; with reduction mean, dL/dW = -W X / B),"
                        f" averaged over {cfg.x_probe_batches} fixed probe batches",
        "runs": runs,
    }
