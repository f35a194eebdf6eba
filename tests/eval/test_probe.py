"""Linear probe: objective and gradient, solver vs slow references, reporting, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dimcollapse.errors import UserError
from dimcollapse.eval._inputs import topk_correct
from dimcollapse.eval._lbfgs import minimize_lbfgs
from dimcollapse.eval.l2_select import select_l2
from dimcollapse.eval.probe import curvature_preconditioner, linear_probe, probe_objective
from dimcollapse.eval.standardize import fit_standardizer, gram, standardize_fit


def _mixture(n, d, c, *, seed, spread=1.0, noise=1.0):
    """Gaussian classes with correlated, offset features (so standardisation matters)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(c, d, generator=g, dtype=torch.float64) * spread
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5 + torch.eye(
        d, dtype=torch.float64
    )
    y = torch.randint(0, c, (n,), generator=g)
    x = (means[y] + noise * torch.randn(n, d, generator=g, dtype=torch.float64)) @ mix
    return x * torch.linspace(0.5, 3.0, d, dtype=torch.float64) + 2.0, y


def _reference_objective(w, b, x, y, l2):
    """F written directly from the formula, one sample at a time (float64)."""
    total = 0.0
    for i in range(x.shape[0]):
        logits = w @ x[i] + b
        total = total + torch.logsumexp(logits, 0) - logits[y[i]]
    return total / x.shape[0] + 0.5 * l2 * (w**2).sum()


def _reference_fit(x, y, c, l2, steps=20000, lr=1.0):
    """Plain full-batch gradient descent (autograd of the mean loss) to convergence."""
    w = torch.zeros(c, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(c, dtype=torch.float64, requires_grad=True)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(x @ w.t() + b, y) + 0.5 * l2 * (w**2).sum()
        gw, gb = torch.autograd.grad(loss, [w, b])
        if max(gw.abs().max(), gb.abs().max()) < 1e-10:
            break
        with torch.no_grad():
            w -= lr * gw
            b -= lr * gb
    return w.detach(), b.detach()


def test_objective_and_gradient_match_the_formula():
    x, y = _mixture(40, 6, 4, seed=1)
    g = torch.Generator().manual_seed(2)
    w = torch.randn(4, 6, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    wr, br = w.clone().requires_grad_(), b.clone().requires_grad_()
    ref = _reference_objective(wr, br, x, y, 0.3)
    ref_gw, ref_gb = torch.autograd.grad(ref, [wr, br])
    for chunk_rows in (7, 40, 2048):  # several chunks with a remainder, one, one partial
        loss, gw, gb = probe_objective(w, b, x, y, 0.3, chunk_rows=chunk_rows)
        assert float(loss) == pytest.approx(float(ref.detach()), rel=1e-12)
        torch.testing.assert_close(gw, ref_gw, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gb, ref_gb, rtol=1e-10, atol=1e-12)
    # and one central finite difference, independent of autograd
    eps, e = 1e-6, torch.zeros_like(w)
    e[2, 3] = eps
    fd = (probe_objective(w + e, b, x, y, 0.3)[0] - probe_objective(w - e, b, x, y, 0.3)[0]) / (
        2 * eps
    )
    assert float(fd) == pytest.approx(float(gw[2, 3]), rel=1e-6)


def test_probe_matches_slow_gradient_descent():
    x, y = _mixture(300, 8, 4, seed=3, spread=0.7)
    xt, yt = _mixture(200, 8, 4, seed=4, spread=0.7)
    l2 = 1e-2
    res = linear_probe(x, y, xt, yt, l2=l2, tol=1e-9, dtype=torch.float64)
    assert res.converged and res.stop_reason == "tol" and res.grad_max_abs <= 1e-9
    std = fit_standardizer(x)
    xs = std(x)
    w_ref, b_ref = _reference_fit(xs, y, 4, l2)
    torch.testing.assert_close(res.weight, w_ref, rtol=0, atol=1e-7)
    # bias is defined up to a common shift (softmax); both start at 0 and keep sum(b) = 0
    torch.testing.assert_close(res.bias - res.bias.mean(), b_ref - b_ref.mean(), rtol=0, atol=1e-7)
    assert res.loss == pytest.approx(float(_reference_objective(w_ref, b_ref, xs, y, l2)), 1e-10)
    ref_pred = (std(xt) @ w_ref.t() + b_ref).argmax(1)
    assert res.top1 == pytest.approx(100.0 * float((ref_pred == yt).double().mean()))


def test_probe_matches_sklearn_with_matching_C():
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, y = _mixture(400, 10, 5, seed=5, spread=0.6)
    xt, yt = _mixture(300, 10, 5, seed=6, spread=0.6)
    l2 = 3e-3
    res = linear_probe(x, y, xt, yt, l2=l2, tol=1e-8, dtype=torch.float64)
    xs, xts = res.standardizer(x).numpy(), res.standardizer(xt).numpy()
    clf = sklearn.LogisticRegression(C=1.0 / (l2 * len(y)), tol=1e-10, max_iter=10000)
    clf.fit(xs, y.numpy())
    np.testing.assert_allclose(res.weight.numpy(), clf.coef_, atol=2e-5)
    ours_pred = (res.predict_scores(xt)).argmax(1).numpy()
    np.testing.assert_array_equal(ours_pred, clf.predict(xts))
    f_sk = probe_objective(torch.from_numpy(clf.coef_), torch.from_numpy(clf.intercept_),
                           torch.from_numpy(xs), y, l2)[0]
    assert res.loss <= float(f_sk) + 1e-10


def test_separable_problem_is_solved():
    x, y = _mixture(500, 16, 6, seed=7, spread=6.0, noise=0.3)
    xt, yt = _mixture(500, 16, 6, seed=7, spread=6.0, noise=0.3)  # same class means
    res = linear_probe(x, y, xt, yt)
    assert res.converged and res.top1 == 100.0 and res.top5 == 100.0 and res.train_top1 == 100.0


def test_float32_matches_float64_and_preconditioning_does_not_change_the_optimum():
    x, y = _mixture(2000, 32, 10, seed=8, spread=0.4)
    xt, yt = _mixture(1000, 32, 10, seed=9, spread=0.4)
    r64 = linear_probe(x, y, xt, yt, l2=1e-3, tol=1e-10, dtype=torch.float64)
    r64_plain = linear_probe(x, y, xt, yt, l2=1e-3, tol=1e-10, dtype=torch.float64,
                             precondition=False)
    r32 = linear_probe(x.float(), y, xt.float(), yt, l2=1e-3, tol=1e-4)
    torch.testing.assert_close(r64.weight, r64_plain.weight, rtol=0, atol=1e-6)
    assert r64.iterations < r64_plain.iterations  # what the preconditioner is for
    assert abs(r32.top1 - r64.top1) <= 0.2 and r32.loss == pytest.approx(r64.loss, abs=1e-6)


def test_preconditioner_survives_an_indefinite_float32_second_moment():
    # Rank-2 S with a -1e-5 eigenvalue (float32 rounding of collapsed features) and l2 = 1e-6:
    # a plain Cholesky of S / C + l2 I fails; the ridge must grow until it succeeds.
    g = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))[0]
    s = u @ torch.diag(torch.tensor([4.0, 2.0] + [0.0] * 5 + [-1e-5], dtype=torch.float64)) @ u.T
    with pytest.raises(torch.linalg.LinAlgError):
        torch.linalg.cholesky(s / 4 + 1e-6 * torch.eye(8, dtype=torch.float64))
    t = curvature_preconditioner(s, 1e-6, 4)
    assert torch.isfinite(t).all() and torch.equal(t, t.tril())
    # Where S / C + l2 I is positive definite, T is exactly its inverse Cholesky factor.
    eye = torch.eye(8, dtype=torch.float64)
    t_pd = curvature_preconditioner(s + eye, 1e-3, 4)
    torch.testing.assert_close(t_pd @ ((s + eye) / 4 + 1e-3 * eye) @ t_pd.T, eye)


def test_deterministic_bits():
    x, y = _mixture(1000, 20, 5, seed=10)
    a = linear_probe(x.float(), y, x.float(), y)
    b = linear_probe(x.float(), y, x.float(), y)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert a.to_dict() | {"seconds": 0} == b.to_dict() | {"seconds": 0}


def test_max_iter_is_reported_as_not_converged():
    x, y = _mixture(500, 12, 4, seed=11)
    res = linear_probe(x, y, x, y, max_iter=2, tol=1e-12)
    assert res.iterations == 2 and not res.converged and res.stop_reason == "max_iter"
    d = res.to_dict()
    assert d["converged"] is False and d["accuracy_unit"] == "percent"


def test_standardizer_stats_and_dead_features():
    x, _ = _mixture(300, 5, 3, seed=12)
    x = torch.cat([x, torch.full((300, 1), 7.0, dtype=torch.float64)], dim=1)  # dead coordinate
    std = fit_standardizer(x)
    np.testing.assert_allclose(std.mean.numpy(), x.numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(std.scale[:5].numpy(), x.numpy()[:, :5].std(0), rtol=1e-12)
    assert std.scale[5] == 1.0
    xs = std(x, torch.float32, chunk_rows=50)
    assert xs.dtype == torch.float32 and torch.all(xs[:, 5] == 0)
    np.testing.assert_allclose(xs.numpy(), ((x - std.mean) / std.scale).numpy(), rtol=0,
                               atol=1e-6)
    # float32 input: variance accumulated in double, so still accurate to float32 resolution
    std32 = fit_standardizer(x.float())
    np.testing.assert_allclose(std32.scale[:5].numpy(), std.scale[:5].numpy(), rtol=1e-6)
    res = linear_probe(x, torch.arange(300) % 3, x, torch.arange(300) % 3)
    assert np.isfinite(res.loss) and torch.all(res.weight[:, 5] == 0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_standardize_fit_second_moment_matches_direct_computation(dtype):
    x, _ = _mixture(1000, 9, 3, seed=20)
    x = torch.cat([x, torch.full((1000, 1), -3.0, dtype=torch.float64)], dim=1).to(dtype)
    std, xs, s = standardize_fit(x, dtype, second_moment=True)
    ref_xs = (x.double() - x.double().mean(0)) / x.double().std(0, correction=0)
    ref_xs[:, 9] = 0.0
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(xs.double(), ref_xs, rtol=0, atol=tol)
    torch.testing.assert_close(s, ref_xs.t() @ ref_xs / 1000, rtol=0, atol=tol)
    g = torch.Generator().manual_seed(21)
    m = torch.randn(37, 11, generator=g, dtype=torch.float64)
    torch.testing.assert_close(gram(m, blocks=3), m.t() @ m, rtol=1e-14, atol=1e-12)


def test_large_offset_survives_float32():
    # features 1e4 + small signal: standardising in float32 would cancel the signal away
    x, y = _mixture(600, 4, 3, seed=13, spread=3.0, noise=0.2)
    res = linear_probe((x * 1e-3 + 1e4).numpy(), y.numpy(), (x * 1e-3 + 1e4).numpy(), y.numpy())
    assert res.top1 > 95.0


def test_topk_correct_against_loops_with_ties():
    g = torch.Generator().manual_seed(14)
    scores = torch.randint(0, 4, (200, 9), generator=g).float()  # many ties
    y = torch.randint(0, 9, (200,), generator=g)
    for k in (1, 3, 5, 20):
        ref = 0
        for i in range(200):
            ranked = sorted(range(9), key=lambda c, i=i: (-float(scores[i, c]), c))
            ref += int(int(y[i]) in ranked[:k])
        assert topk_correct(scores, y, k) == ref


def test_lbfgs_solves_a_quadratic():
    g = torch.Generator().manual_seed(15)
    m = torch.randn(30, 30, generator=g, dtype=torch.float64)
    a = m @ m.t() + 0.1 * torch.eye(30, dtype=torch.float64)
    rhs = torch.randn(30, generator=g, dtype=torch.float64)

    def fun(v):
        grad = a @ v - rhs
        return float(0.5 * v @ a @ v - rhs @ v), grad, float(grad.abs().max())

    # f sums terms of size ~1e3, so its rounding error is ~1e-12 relative to f: say so
    x0 = torch.zeros(30, dtype=torch.float64)
    out = minimize_lbfgs(fun, x0, tol=1e-10, max_iter=1000, f_noise=1e-11)
    assert out.stop_reason == "tol" and out.iterations < 300
    torch.testing.assert_close(out.x, torch.linalg.solve(a, rhs), rtol=0, atol=1e-8)
    # an unreachable tolerance ends as "stalled" well before max_iter, not in an endless loop
    out = minimize_lbfgs(fun, x0, tol=1e-20, max_iter=5000, f_noise=1e-11)
    assert out.stop_reason == "stalled" and out.iterations < 1000 and out.stat < 1e-8


def test_select_l2_uses_held_out_rows_and_prefers_larger_l2_on_ties():
    x, y = _mixture(400, 8, 3, seed=16, spread=8.0, noise=0.2)  # every l2 here scores 100%
    sel = select_l2(x, y, grid=(1e-5, 1e-3, 1e-1), val_fraction=0.25, seed=3)
    assert sel.val_top1 == (100.0, 100.0, 100.0) and sel.l2 == 1e-1
    assert (sel.n_fit, sel.n_val) == (300, 100)
    x2, y2 = _mixture(400, 30, 4, seed=17, spread=0.3)
    sel2 = select_l2(x2, y2, grid=(1e-4, 1.0), val_fraction=0.25, seed=3)
    perm = torch.randperm(400, generator=torch.Generator().manual_seed(3))
    val, fit = perm[:100], perm[100:]
    for l2, score in zip(sel2.grid, sel2.val_top1, strict=True):
        assert score == linear_probe(x2[fit], y2[fit], x2[val], y2[val], l2=l2).top1
    assert sel2.l2 == sel2.grid[int(np.argmax(sel2.val_top1))]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(l2=0.0), "l2"),
        (dict(max_iter=0), "max_iter"),
        (dict(num_classes=2), "num_classes"),
    ],
)
def test_bad_arguments(kwargs, match):
    x, y = _mixture(50, 3, 3, seed=18)
    with pytest.raises(UserError, match=match):
        linear_probe(x, y, x, y, **kwargs)


def test_bad_inputs():
    x, y = _mixture(50, 3, 3, seed=19)
    with pytest.raises(UserError, match="3-d"):
        linear_probe(x, y, x[:, :2], y)
    with pytest.raises(UserError, match="labels"):
        linear_probe(x, y[:10], x, y)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(UserError, match="train features contain NaN"):
        linear_probe(bad, y, x, y)
    with pytest.raises(UserError, match="test features contain NaN"):
        linear_probe(x, y, bad, y)
    bad[3, 1] = float("inf")
    with pytest.raises(UserError, match="train features contain NaN or infinite"):
        linear_probe(bad.float(), y, x.float(), y)
    with pytest.raises(UserError, match="shape"):
        linear_probe(x[0], y, x, y)
    with pytest.raises(UserError, match="integer"):
        linear_probe(x, y.double(), x, y)
