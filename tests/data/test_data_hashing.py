"""The counter RNG: lowbias32 against a plain-Python reference, uniforms, permutations."""

import random

import torch

from dimcollapse.data.hashing import hash32, key_hash, permutation, uniforms


def _lowbias32_ref(x: int) -> int:
    # Written from the published definition with Python's unbounded ints.
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def test_hash32_matches_reference_including_extreme_words():
    rng = random.Random(0)
    xs = [0, 1, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF] + [rng.getrandbits(32) for _ in range(2000)]
    got = hash32(torch.tensor(xs, dtype=torch.int64)).tolist()
    assert got == [_lowbias32_ref(x) for x in xs]


def test_key_hash_depends_on_every_field_and_both_words():
    base = key_hash(1, 2, 3).item()
    assert key_hash(1, 2, 4).item() != base
    assert key_hash(2, 2, 3).item() != base
    assert key_hash(1, 2, 3 + (1 << 32)).item() != base  # high word counts
    assert key_hash(1, 2, 3).item() == base
    idx = torch.arange(5)
    assert key_hash(7, idx).tolist() == [key_hash(7, i).item() for i in range(5)]


def test_uniforms_are_in_open_unit_interval_and_look_uniform():
    u = uniforms(key_hash(0, torch.arange(20000)), 4)
    assert u.shape == (20000, 4) and u.dtype == torch.float64
    assert (u > 0).all() and (u < 1).all()
    assert abs(u.mean().item() - 0.5) < 0.01
    assert abs(u.var().item() - 1 / 12) < 0.002
    c = torch.corrcoef(u.T)  # streams of one key are uncorrelated
    assert (c - torch.eye(4)).abs().max() < 0.03


def test_permutation_is_a_deterministic_permutation():
    p = permutation(1000, 3, 5)
    assert sorted(p.tolist()) == list(range(1000))
    assert torch.equal(p, permutation(1000, 3, 5))
    assert not torch.equal(p, permutation(1000, 3, 6))
    assert not torch.equal(p, torch.arange(1000))
