import math

import pytest
import torch
import torch.nn.functional as F

from dimcollapse.losses import LOSSES, InfoNCELoss, NTXentLoss, infonce, ntxent


def _z(n=7, d=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)


def _unit(v):
    s = math.sqrt(sum(x * x for x in v))
    return [x / s for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def slow_infonce_one_side(a, b, tau, normalize):
    """-(1/N) sum_i log(exp(<a_i,b_i>/tau) / sum_j exp(<a_i,b_j>/tau)), explicit loops."""
    a, b = a.tolist(), b.tolist()
    if normalize:
        a, b = [_unit(v) for v in a], [_unit(v) for v in b]
    total = 0.0
    for i in range(len(a)):
        denom = sum(math.exp(_dot(a[i], b[j]) / tau) for j in range(len(b)))
        total += -math.log(math.exp(_dot(a[i], b[i]) / tau) / denom)
    return total / len(a)


def slow_ntxent(z1, z2, tau, normalize):
    """Anchors u_0..u_{2N-1} = [z1; z2]; positive of a is a +- N; negatives all b != a."""
    u = z1.tolist() + z2.tolist()
    if normalize:
        u = [_unit(v) for v in u]
    n2 = len(u)
    total = 0.0
    for a in range(n2):
        p = (a + n2 // 2) % n2
        denom = sum(math.exp(_dot(u[a], u[b]) / tau) for b in range(n2) if b != a)
        total += -math.log(math.exp(_dot(u[a], u[p]) / tau) / denom)
    return total / n2


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_infonce_matches_slow_reference(normalize, tau):
    z1, z2 = _z()
    ref = 0.5 * (slow_infonce_one_side(z1, z2, tau, normalize)
                 + slow_infonce_one_side(z2, z1, tau, normalize))
    got = infonce(z1, z2, temperature=tau, normalize=normalize)
    assert abs(got.item() - ref) < 1e-12
    one = infonce(z1, z2, temperature=tau, normalize=normalize, symmetric=False)
    assert abs(one.item() - slow_infonce_one_side(z1, z2, tau, normalize)) < 1e-12


def test_infonce_equals_official_cross_entropy_form():
    z1, z2 = _z(n=16, d=8, dtype=torch.float32)
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    labels = torch.arange(16)
    official = (F.cross_entropy(a @ b.T / 0.1, labels) / 2
                + F.cross_entropy(b @ a.T / 0.1, labels) / 2)
    torch.testing.assert_close(infonce(z1, z2), official)


@pytest.mark.parametrize("normalize", [True, False])
def test_ntxent_matches_slow_reference(normalize):
    z1, z2 = _z()
    got = ntxent(z1, z2, temperature=0.2, normalize=normalize)
    assert abs(got.item() - slow_ntxent(z1, z2, 0.2, normalize)) < 1e-12


def test_ntxent_and_infonce_differ_in_negatives():
    # Same data, different objectives: NT-Xent also contrasts within a view.
    z1, z2 = _z()
    assert abs(ntxent(z1, z2).item() - infonce(z1, z2).item()) > 1e-3


def test_grouped_embeddings_sum_the_group_losses():
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(6, 4, 3, generator=g), torch.randn(6, 4, 3, generator=g)
    for fn in (infonce, ntxent):
        ref = sum(fn(z1[:, k], z2[:, k]) for k in range(4))
        torch.testing.assert_close(fn(z1, z2), ref)


def test_official_group_mode_formula():
    # Official --mode group: loss = sum_i [infoNCE(r1[:, idx_i], r2[:, idx_i]) / 2 + (swap) / 2]
    from dimcollapse.models import build_projector

    g = torch.Generator().manual_seed(4)
    r1, r2 = torch.randn(5, 32, generator=g), torch.randn(5, 32, generator=g)
    proj = build_projector("group", 32, seed=1)
    proj.set_step(9)
    idx = proj.index
    ref = 0.0
    for i in range(8):
        sel = idx[i * 4:(i + 1) * 4]
        ref = ref + infonce(r1[:, sel], r2[:, sel])
    torch.testing.assert_close(infonce(proj(r1), proj(r2)), ref)


def test_low_precision_inputs_are_computed_in_float32():
    z1, z2 = _z(n=8, d=16, dtype=torch.float32)
    ref = infonce(z1, z2)
    got = infonce(z1.bfloat16(), z2.bfloat16())
    assert got.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_autocast = infonce(z1, z2)
    assert in_autocast.dtype == torch.float32
    torch.testing.assert_close(in_autocast, ref)
    assert abs(got.item() - ref.item()) < 0.05


def test_loss_decreases_when_views_align():
    z1, _ = _z(n=32, d=16, dtype=torch.float32)
    z2 = torch.randn(32, 16, generator=torch.Generator().manual_seed(9))
    z2.requires_grad_()
    opt = torch.optim.SGD([z2], lr=1.0)
    losses = []
    for _ in range(20):
        loss = infonce(z1, z2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_registry_modules_and_errors():
    assert LOSSES == {"infonce": infonce, "ntxent": ntxent}
    z1, z2 = _z()
    assert InfoNCELoss(temperature=0.3)(z1, z2) == infonce(z1, z2, temperature=0.3)
    assert NTXentLoss(normalize=False)(z1, z2) == ntxent(z1, z2, normalize=False)
    with pytest.raises(ValueError, match="shape"):
        infonce(z1, z2[:3])
    with pytest.raises(ValueError, match="temperature"):
        ntxent(z1, z2, temperature=0.0)
    with pytest.raises(ValueError, match="groups"):
        infonce(z1[None, ..., None], z2[None, ..., None])
