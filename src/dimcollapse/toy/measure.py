"""Measurements taken during toy runs: spectra, singular values, X averaged over batches.

Every measurement is done in float64 on a float64 copy of the weights, whatever dtype trained.
"""

from __future__ import annotations

import numpy as np
import torch

from dimcollapse.spectrum import covariance_spectrum
from dimcollapse.toy.data import ViewBatches, gaussian_inputs
from dimcollapse.toy.nets import LinearStack
from dimcollapse.toy.theory import X_MATRIX


def embedding_spectra(z: torch.Tensor) -> np.ndarray:
    """Eqn 1 per run on raw z (no L2 normalisation, centred, 1/N; SPEC §1: toy spectra use raw
    z), via dimcollapse.spectrum: (R, N, d) -> (R, d) float64, descending, clipped at 0."""
    return np.stack([covariance_spectrum(z[r].double(), normalize=False, center=True)
                     for r in range(z.shape[0])])


def eval_inputs(seed: int, n: int, dim: int) -> torch.Tensor:
    """The fresh inputs the spectrum is measured on (a stream separate from training). (n, d)"""
    return gaussian_inputs(n, dim, seed=seed, stream="eval", dtype=torch.float64)


def float64_copy(net: LinearStack) -> LinearStack:
    """The same runs in float64 (for measurements)."""
    return LinearStack([w.double() for w in net.weights], net.depth.tolist(), net.relu.tolist())


def run_spectra(net: LinearStack, x_eval: torch.Tensor) -> np.ndarray:
    """Embedding spectrum of every run on x_eval (N, d) (or per-run (R, N, d)). -> (R, d)."""
    net64 = float64_copy(net)
    x = x_eval if x_eval.ndim == 3 else x_eval.expand(net64.num_runs, *x_eval.shape)
    return embedding_spectra(net64.forward(x))


def singular_values(w: torch.Tensor) -> np.ndarray:
    """Singular values, descending, float64: (R, d, d) -> (R, d)."""
    return torch.linalg.svdvals(w.double()).numpy()


class XProbe:
    """A fixed set of probe batches (views of training inputs) on which X is averaged, so X at
    the start and at the end differ only through the weights (single-layer linear runs)."""

    def __init__(self, seeds, amplitude: torch.Tensor, *, n_batches: int, n_samples: int,
                 batch_size: int):
        probe = ViewBatches(seeds, amplitude, n_samples=n_samples, batch_size=batch_size,
                            dtype=torch.float64, streams="xprobe-")
        self.batches = [probe.next() for _ in range(n_batches)]

    def eigenvalues(self, w: torch.Tensor, loss: str) -> np.ndarray:
        """Eigenvalues (descending) of X averaged over the probe batches, for single-layer
        weights w (R, d, d). -> (R, d) float64."""
        w = w.double()
        total: torch.Tensor | None = None
        for x1, x2 in self.batches:
            z1, z2 = x1 @ w.transpose(1, 2), x2 @ w.transpose(1, 2)
            xm = X_MATRIX[loss](x1, x2, z1, z2)
            total = xm if total is None else total + xm
        assert total is not None, "no probe batches"
        mean = total / len(self.batches)
        return torch.linalg.eigvalsh(0.5 * (mean + mean.transpose(1, 2))).flip(-1).numpy()
