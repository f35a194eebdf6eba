"""Seeded Gaussian inputs and additive-noise views for the toy experiments (SPEC §3).

Every random draw comes from a `torch.Generator` seeded from `(seed, stream name)`, so a run is a
pure function of its seed. Runs that share a seed share the training set, the batch order, the
base noise and (see `nets.py`) the initial weights: *common random numbers*. In a k sweep the
runs then differ only in k, which is what Fig 3 compares; and a batched run equals the same run
done alone, bit for bit.

Views follow the official toy code: both branches are noisy, x1 = x + a * eps1 and
x2 = x + a * eps2 with eps ~ N(0, I) and a per-dimension amplitude vector a (strong
augmentation: a = k on dims 8-15, 0 on dims 0-7). The covariance of x' - x is then 2 a^2 per
dimension; the paper's blockdiag(0, k I) corresponds to k_paper = 2 k^2.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

N_SAMPLES = 10_000
DIM = 16
BATCH_SIZE = 128
EVAL_SAMPLES = 1_000
# Random draws are made per chunk of this many steps; fixed so that streams never depend on
# --steps (a short run is exactly the prefix of a long one).
CHUNK_STEPS = 100


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named random stream of run seed `seed` (independent streams)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, zlib.crc32(stream.encode())])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def make_generator(seed: int, stream: str) -> torch.Generator:
    """A CPU `torch.Generator` for the named stream of `seed`."""
    return torch.Generator().manual_seed(derive_seed(seed, stream))


def gaussian_inputs(n: int, dim: int, *, seed: int, stream: str = "data",
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Isotropic Gaussian inputs, drawn in float64 then cast. Shape: (n, dim)."""
    x = torch.randn(n, dim, generator=make_generator(seed, stream), dtype=torch.float64)
    return x.to(dtype)


def strong_aug_amplitude(k: float, dim: int = DIM, noisy_from: int = 8) -> torch.Tensor:
    """Per-dimension noise amplitude of Fig 3: 0 on dims [0, noisy_from), k on the rest. (dim,)"""
    a = torch.zeros(dim, dtype=torch.float64)
    a[noisy_from:] = float(k)
    return a


def uniform_amplitude(noise: float, dim: int = DIM) -> torch.Tensor:
    """The same noise amplitude on every dimension (Fig 5/6/11). Shape: (dim,)."""
    return torch.full((dim,), float(noise), dtype=torch.float64)


class _SeedStream:
    """Training set, epoch permutations and base noise of one seed."""

    def __init__(self, seed: int, n_samples: int, dim: int, batch_size: int, dtype,
                 prefix: str):
        self.data = gaussian_inputs(n_samples, dim, seed=seed, dtype=dtype)
        self.perm_gen = make_generator(seed, prefix + "batch-order")
        self.noise_gen = make_generator(seed, prefix + "noise")
        self.batch_size, self.dim, self.dtype = batch_size, dim, dtype
        self.steps_per_epoch = n_samples // batch_size  # drop the last partial batch
        self._perm: torch.Tensor | None = None
        self._pos = self.steps_per_epoch

    def _next_indices(self) -> torch.Tensor:
        if self._pos >= self.steps_per_epoch:
            self._perm = torch.randperm(len(self.data), generator=self.perm_gen)
            self._pos = 0
        b = self.batch_size
        assert self._perm is not None  # drawn above: _pos starts at steps_per_epoch
        idx = self._perm[self._pos * b:(self._pos + 1) * b]
        self._pos += 1
        return idx

    def chunk(self, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (steps, B, d) and base noise (steps, 2, B, d) for the next `steps` steps."""
        idx = torch.stack([self._next_indices() for _ in range(steps)])
        noise = torch.randn(steps, 2, self.batch_size, self.dim, generator=self.noise_gen,
                            dtype=torch.float64).to(self.dtype)
        return self.data[idx], noise


class ViewBatches:
    """Two noisy views of a minibatch, for R runs at once (SPEC §3: batch 128 drawn without
    replacement from 10,000 samples: one random permutation per epoch, last partial batch
    dropped).

    `seeds[r]` picks run r's random streams; `amplitude[r]` (shape (R, d)) scales its noise.
    `next()` returns (x1, x2), each (R, B, d). `streams` prefixes the batch-order and noise
    stream names, for probe batches that must not disturb the training streams.
    """

    def __init__(self, seeds: Sequence[int], amplitude: torch.Tensor, *,
                 n_samples: int = N_SAMPLES, batch_size: int = BATCH_SIZE,
                 dtype: torch.dtype = torch.float32, streams: str = ""):
        amplitude = torch.as_tensor(amplitude, dtype=torch.float64)
        if amplitude.ndim != 2 or amplitude.shape[0] != len(seeds):
            raise ValueError(f"amplitude must be (R, d) with R = {len(seeds)} runs, "
                             f"got {tuple(amplitude.shape)}")
        if batch_size > n_samples:
            raise ValueError(f"batch_size {batch_size} exceeds n_samples {n_samples}")
        unique = sorted(set(int(s) for s in seeds))
        self.run_stream = torch.tensor([unique.index(int(s)) for s in seeds])
        self.streams = [_SeedStream(s, n_samples, amplitude.shape[1], batch_size, dtype, streams)
                        for s in unique]
        self.amplitude = amplitude.to(dtype)[:, None, None, :]  # (R, 1, 1, d)
        self.num_runs, self.batch_size = len(seeds), batch_size
        self._x: torch.Tensor | None = None
        self._noise: torch.Tensor | None = None
        self._c = CHUNK_STEPS

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._c >= CHUNK_STEPS:
            parts = [s.chunk(CHUNK_STEPS) for s in self.streams]
            self._x = torch.stack([p[0] for p in parts], 1)  # (C, U, B, d)
            self._noise = torch.stack([p[1] for p in parts], 1)  # (C, U, 2, B, d)
            self._c = 0
        c = self._c
        self._c += 1
        assert self._x is not None and self._noise is not None  # _c starts at CHUNK_STEPS
        if len(self.streams) == 1:  # common case: one seed, broadcast instead of gather
            x, noise = self._x[c, 0], self._noise[c, 0][None]
        else:
            x, noise = self._x[c, self.run_stream], self._noise[c, self.run_stream]
        noise = noise * self.amplitude  # (R, 2, B, d): each run's own amplitude
        return x + noise[:, 0], x + noise[:, 1]
