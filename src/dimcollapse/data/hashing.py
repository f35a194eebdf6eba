"""Counter-based random numbers: a pure function of integer keys, computed with tensor ops.

Every random draw in data/ and views/ (subsets, epoch permutations, augmentation parameters)
is `hash(seed, key fields..., stream)`, not the state of a generator. So a sample's draw does
not depend on which other samples share its batch, on the number of processes, on worker
scheduling, or on where a run was resumed: exactly what bit-exact resume and DDP invariance need.

The mixer is Chris Wellons' "lowbias32" integer hash (a bijection on 32-bit words with low
avalanche bias), evaluated on int64 tensors holding values in [0, 2^32). Multiplications are split
into 16-bit halves so no intermediate exceeds 2^49: no signed overflow on any device.
Keys are chained: h = H(h ^ field) for each 32-bit half of each field.
"""

from __future__ import annotations

import torch

_M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9  # 2^32 / phi, spreads consecutive stream ids


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2^32 for x in [0, 2^32) without exceeding int64 range."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _M32


def hash32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32: a bijective 32-bit mixer. Shape: any int64 tensor with values in [0, 2^32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _as_words(v: int | torch.Tensor) -> tuple[torch.Tensor | int, torch.Tensor | int]:
    if isinstance(v, torch.Tensor):
        v = v.to(torch.int64)
        return v & _M32, (v >> 32) & _M32
    if v < 0:
        raise ValueError(f"counter RNG keys must be non-negative integers, got {v}")
    return v & _M32, (v >> 32) & _M32


def key_hash(*fields: int | torch.Tensor) -> torch.Tensor:
    """32-bit hash of a tuple of non-negative integer keys (ints or int64 tensors, broadcast).

    Shape: broadcast shape of the tensor fields (a 0-d tensor when all are ints). CPU int64.
    """
    h = torch.tensor(0x12345678, dtype=torch.int64)
    for f in fields:
        for w in _as_words(f):
            if isinstance(w, torch.Tensor):
                w = w.cpu()
            h = hash32(h ^ w)
    return h


def uniforms(key: torch.Tensor, streams: int | torch.Tensor) -> torch.Tensor:
    """Uniform(0, 1) float64 draws, one per (key, stream); never exactly 0 or 1.

    Shape: key (...) int64, streams int n -> (..., n); or a stream-id tensor broadcast with key.
    """
    if isinstance(streams, int):
        streams = torch.arange(streams, dtype=torch.int64)
    s = (streams.to(torch.int64) * _GOLDEN) & _M32
    h = hash32(hash32((key.unsqueeze(-1) + s) & _M32) ^ 0x5BD1E995)
    return (h.to(torch.float64) + 0.5) * (1.0 / 4294967296.0)


def permutation(n: int, *fields: int) -> torch.Tensor:
    """A permutation of range(n) determined by integer keys (e.g. seed, epoch). LongTensor [n].

    argsort of per-position hashes; ties (rare) are broken by position, so it is deterministic.
    """
    keys = key_hash(*fields, torch.arange(n, dtype=torch.int64))
    return torch.argsort(keys, stable=True)
