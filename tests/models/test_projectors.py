import pytest
import torch

from dimcollapse.errors import UserError
from dimcollapse.losses import infonce
from dimcollapse.models import PROJECTORS, USES_D0, Encoder, build_backbone, build_projector

D = 64


def _r(n=6, seed=0, dtype=torch.float32):
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed), dtype=dtype)


EXPECTED_SHAPE = {
    "mlp": (6, 128),
    "linear": (6, 128),
    "none": (6, D),
    "directclr": (6, 10),
    "orthogonal": (6, D),
    "diagonal": (6, D),
    "lowrank": (6, D),
    "lowrank-diagonal": (6, D),
    "random-subvector": (6, 10),
    "group": (6, 8, 8),
}


def test_registry_holds_every_arm():
    assert set(PROJECTORS) == set(EXPECTED_SHAPE)


@pytest.mark.parametrize("name", list(EXPECTED_SHAPE))
def test_output_shape_and_out_dim(name):
    proj = build_projector(name, D, d0=10)
    z = proj(_r())
    assert z.shape == EXPECTED_SHAPE[name]
    assert proj.out_dim == z[0].numel()
    proj.set_step(3)  # every arm takes it


def test_mlp_structure_matches_paper_and_overrides():
    proj = build_projector("mlp", D)
    kinds = [type(m).__name__ for m in proj]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    assert proj[0].bias is None and proj[3].bias is None
    assert proj[0].weight.shape == (D, D) and proj[3].weight.shape == (128, D)
    small = build_projector("mlp", D, hidden_dim=32, out_dim=16)
    assert small[0].weight.shape == (32, D) and small[3].weight.shape == (16, 32)
    # forward is the composition, in train mode (batch statistics)
    r = _r()
    h = torch.relu(torch.nn.functional.batch_norm(r @ proj[0].weight.T, None, None, training=True,
                                                  weight=proj[1].weight, bias=proj[1].bias))
    ref = torch.nn.functional.batch_norm(h @ proj[3].weight.T, None, None, training=True,
                                         weight=proj[4].weight, bias=proj[4].bias)
    torch.testing.assert_close(proj.train()(r), ref)


def test_linear_none_directclr_semantics():
    r = _r()
    lin = build_projector("linear", D, out_dim=7)
    assert lin.bias is None
    torch.testing.assert_close(lin(r), r @ lin.weight.T)
    assert torch.equal(build_projector("none", D)(r), r)
    assert torch.equal(build_projector("directclr", D, d0=10)(r), r[:, :10])


def test_orthogonal_is_orthogonal_for_any_parameter():
    proj = build_projector("orthogonal", D)
    assert torch.equal(proj.weight(), torch.eye(D))  # A = 0 at init
    with torch.no_grad():
        proj.skew.copy_(torch.randn(D, D, generator=torch.Generator().manual_seed(1)))
    w = proj.weight()
    torch.testing.assert_close(w.T @ w, torch.eye(D), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.svdvals(w), torch.ones(D), atol=1e-5, rtol=0)
    torch.testing.assert_close(proj(_r()), _r() @ w.T)
    rect = build_projector("orthogonal", D, out_dim=16)
    with torch.no_grad():
        rect.skew.copy_(torch.randn(D, D, generator=torch.Generator().manual_seed(2)))
    w = rect.weight()
    assert w.shape == (16, D)
    torch.testing.assert_close(w @ w.T, torch.eye(16), atol=1e-5, rtol=0)


def test_orthogonal_square_leaves_infonce_and_its_gradient_unchanged():
    # A rotation preserves inner products, so normalised InfoNCE cannot see it (docs/methods.md).
    proj = build_projector("orthogonal", D)
    with torch.no_grad():
        proj.skew.copy_(0.3 * torch.randn(D, D, generator=torch.Generator().manual_seed(3)))
    r1, r2 = _r(seed=1).requires_grad_(), _r(seed=2).requires_grad_()
    loss = infonce(proj(r1), proj(r2))
    loss.backward()
    q1, q2 = _r(seed=1).requires_grad_(), _r(seed=2).requires_grad_()
    ref = infonce(q1, q2)
    ref.backward()
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(r1.grad, q1.grad, atol=1e-5, rtol=0)
    assert proj.skew.grad.abs().max() < 1e-4


def test_diagonal_starts_at_identity_and_scales():
    proj = build_projector("diagonal", D)
    r = _r()
    assert torch.equal(proj(r), r)
    assert [n for n, _ in proj.named_parameters()] == ["scale"]
    with torch.no_grad():
        proj.scale.copy_(torch.arange(D, dtype=torch.float32))
    torch.testing.assert_close(proj(r), r @ torch.diag(torch.arange(D, dtype=torch.float32)))


def test_lowrank_has_rank_d0_unit_singular_values_and_no_parameters():
    proj = build_projector("lowrank", D, d0=12, seed=5)
    assert list(proj.parameters()) == []
    assert set(proj.state_dict()) == {"u", "v"}
    m = proj(torch.eye(D, dtype=torch.float32)).T  # the D x D matrix U diag V^T
    s = torch.linalg.svdvals(m.double())
    torch.testing.assert_close(s[:12], torch.ones(12, dtype=torch.float64), atol=1e-5, rtol=0)
    assert s[12:].max() < 1e-5
    assert torch.linalg.matrix_rank(m, atol=1e-4) == 12
    u, v = proj.u.double(), proj.v.double()
    torch.testing.assert_close(u.T @ u, torch.eye(12, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(v.T @ v, torch.eye(12, dtype=torch.float64), atol=1e-6, rtol=0)
    # fixed by the seed: same seed same matrices, another seed other matrices, U != V
    again = build_projector("lowrank", D, d0=12, seed=5)
    other = build_projector("lowrank", D, d0=12, seed=6)
    assert torch.equal(proj.u, again.u) and torch.equal(proj.v, again.v)
    assert not torch.allclose(proj.u, other.u) and not torch.allclose(proj.u, proj.v)


def test_lowrank_diagonal_equals_directclr_up_to_zero_padding():
    r = _r()
    z = build_projector("lowrank-diagonal", D, d0=10)(r)
    assert torch.equal(z[:, :10], r[:, :10]) and torch.count_nonzero(z[:, 10:]) == 0
    a1, a2 = _r(seed=1).requires_grad_(), _r(seed=2).requires_grad_()
    b1, b2 = _r(seed=1).requires_grad_(), _r(seed=2).requires_grad_()
    lrd = build_projector("lowrank-diagonal", D, d0=10)
    dclr = build_projector("directclr", D, d0=10)
    la, lb = infonce(lrd(a1), lrd(a2)), infonce(dclr(b1), dclr(b2))
    (la + lb).backward()
    torch.testing.assert_close(la, lb, atol=1e-6, rtol=0)
    torch.testing.assert_close(a1.grad, b1.grad, atol=1e-6, rtol=0)


def test_random_subvector_depends_on_seed_and_step_only():
    r = _r()
    a = build_projector("random-subvector", D, d0=10, seed=3)
    b = build_projector("random-subvector", D, d0=10, seed=3)
    a.set_step(17)
    b.set_step(17)
    assert torch.equal(a.index, b.index) and torch.equal(a(r), b(r))
    assert len(set(a.index.tolist())) == 10 and a.index.max() < D
    assert torch.equal(a(r), r[:, a.index])
    first = a.index.clone()
    a.set_step(18)
    assert not torch.equal(a.index, first)
    a.set_step(17)
    assert torch.equal(a.index, first)  # a resumed run redraws the same coordinates
    c = build_projector("random-subvector", D, d0=10, seed=4)
    c.set_step(17)
    assert not torch.equal(c.index, first)
    # across many steps all coordinates get used (not a fixed sub-vector)
    seen = set()
    for step in range(40):
        a.set_step(step)
        seen.update(a.index.tolist())
    assert len(seen) == D


def test_group_partitions_a_fresh_permutation_each_step():
    r = torch.arange(D, dtype=torch.float32).repeat(3, 1)
    g = build_projector("group", D, seed=2)
    g.set_step(5)
    z = g(r)
    assert z.shape == (3, 8, 8)
    assert sorted(z[0].flatten().long().tolist()) == list(range(D))  # disjoint, covering
    g2 = build_projector("group", D, seed=2)
    g2.set_step(5)
    assert torch.equal(g2(r), z)
    g.set_step(6)
    assert not torch.equal(g(r), z)
    odd = build_projector("group", 70, groups=8)
    assert odd(torch.randn(2, 70)).shape == (2, 8, 8)


@pytest.mark.parametrize("name", USES_D0)
def test_d0_errors_name_d0_size_and_fix(name):
    with pytest.raises(UserError, match=r"d0 = 65 .*64 coordinates.*--d0 between 1 and 64"):
        build_projector(name, D, d0=65)
    with pytest.raises(UserError, match="needs d0"):
        build_projector(name, D)
    with pytest.raises(UserError, match="d0 = 0"):
        build_projector(name, D, d0=0)
    assert build_projector(name, D, d0=D).out_dim in (D,)


def test_other_bad_arguments():
    with pytest.raises(UserError, match="unknown projector"):
        build_projector("mlp3", D)
    with pytest.raises(UserError, match="out_dim"):
        build_projector("orthogonal", D, out_dim=D + 1)
    with pytest.raises(UserError, match="hidden_dim"):
        build_projector("mlp", D, hidden_dim=0)


def test_seed_fixes_initial_weights_without_touching_global_rng():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = build_projector("mlp", D, seed=1)
    assert torch.equal(torch.get_rng_state(), before)
    b, c = build_projector("mlp", D, seed=1), build_projector("mlp", D, seed=2)
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[0].weight, c[0].weight)


def test_encoder_returns_r_and_z():
    backbone = build_backbone("resnet18", stem="cifar", seed=0).eval()
    enc = Encoder(backbone, build_projector("directclr", backbone.out_dim, d0=32)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        r, z = enc(x)
        assert torch.equal(r, backbone(x)) and torch.equal(z, r[:, :32])
    keys = set(enc.state_dict())
    assert {k.split(".")[0] for k in keys} == {"backbone"}
    enc.set_step(4)


def test_lowrank_loss_equals_infonce_of_a_fixed_d0_projection():
    # U has orthonormal columns, so the loss sees only V[:, :d0]^T r (docs/methods.md).
    proj = build_projector("lowrank", D, d0=12, seed=5)
    r1, r2 = _r(seed=1), _r(seed=2)
    torch.testing.assert_close(infonce(proj(r1), proj(r2)), infonce(r1 @ proj.v, r2 @ proj.v))
