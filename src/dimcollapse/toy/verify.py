"""Numeric checks of the paper's theory (Section 4-5, Appendix B), all in float64.

Each check returns {"name", "error", "tolerance", "passed", "detail"}; `error` is a relative
error (or a count difference) and `passed` is error <= tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from dimcollapse.linalg import haar_orthogonal
from dimcollapse.toy.data import make_generator, strong_aug_amplitude, uniform_amplitude
from dimcollapse.toy.losses import LOSSES, paper_loss
from dimcollapse.toy.nets import init_layers
from dimcollapse.toy.theory import X_MATRIX, lemma2_x, singular_value_rates, theorem3_rates
from dimcollapse.toy.train import single_threaded

F64 = torch.float64


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def _check(name: str, error: float, tolerance: float, detail: str) -> dict:
    passed = bool(math.isfinite(error) and error <= tolerance)
    return {"name": name, "error": float(error), "tolerance": float(tolerance),
            "passed": passed, "detail": detail}


def _views(gen: torch.Generator, b: int, amplitude: torch.Tensor):
    x = torch.randn(b, amplitude.shape[0], generator=gen, dtype=F64)
    n1 = torch.randn(b, amplitude.shape[0], generator=gen, dtype=F64) * amplitude
    n2 = torch.randn(b, amplitude.shape[0], generator=gen, dtype=F64) * amplitude
    return x + n1, x + n2


def check_lemma1(seed: int, loss: str, batch_sizes=(2, 16, 128, 512)) -> dict:
    """Lemma 1-2: autograd dL/dW == -W X for z = W x (loss summed over i), several batches."""
    gen = make_generator(seed, f"verify-lemma1-{loss}")
    worst = 0.0
    for b in batch_sizes:
        w = torch.randn(16, 16, generator=gen, dtype=F64) / 4
        x1, x2 = _views(gen, b, strong_aug_amplitude(1.0))
        wg = w.clone().requires_grad_(True)
        val = LOSSES[loss].value(x1 @ wg.T, x2 @ wg.T, "sum")
        (g,) = torch.autograd.grad(val, wg)
        xm = X_MATRIX[loss](x1, x2, x1 @ w.T, x2 @ w.T)
        worst = max(worst, _rel(g, -w @ xm))
    what = "Lemma 2's X = S0 - S1" if loss == "paper" else "X_off"
    return _check(f"lemma1_2[{loss}]: dL/dW = -W X", worst, 1e-10,
                  f"autograd vs -W X with {what}; batch sizes {list(batch_sizes)}")


def check_grad_formulas(seed: int, loss: str) -> dict:
    """g_z and g_z' in closed form (SPEC §2) against autograd, both reductions."""
    gen = make_generator(seed, f"verify-gz-{loss}")
    worst = 0.0
    for b, red in ((8, "sum"), (64, "sum"), (128, "mean")):
        z1 = torch.randn(b, 16, generator=gen, dtype=F64).requires_grad_(True)
        z2 = (z1.detach() + 0.3 * torch.randn(b, 16, generator=gen, dtype=F64))
        z2.requires_grad_(True)
        g1, g2 = torch.autograd.grad(LOSSES[loss].value(z1, z2, red), (z1, z2))
        f1, f2 = LOSSES[loss].grad(z1.detach(), z2.detach(), red)
        worst = max(worst, _rel(f1, g1), _rel(f2, g2))
    return _check(f"grad_formulas[{loss}]: g_z, g_z'", worst, 1e-10,
                  "closed-form dL/dz, dL/dz' vs autograd (sum and mean reductions)")


def rk4(f: Callable, y: list[torch.Tensor], h: float, n: int) -> list[torch.Tensor]:
    """Classical Runge-Kutta on a list of tensors: y' = f(y)."""
    for _ in range(n):
        k1 = f(y)
        k2 = f([a + 0.5 * h * k for a, k in zip(y, k1, strict=True)])
        k3 = f([a + 0.5 * h * k for a, k in zip(y, k2, strict=True)])
        k4 = f([a + h * k for a, k in zip(y, k3, strict=True)])
        y = [a + h / 6 * (p + 2 * q + 2 * r + s)
             for a, p, q, r, s in zip(y, k1, k2, k3, k4, strict=True)]
    return y


def _strong_aug_x(seed: int, k: float, n_batches: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(W0, X): a Haar orthogonal W0 and Lemma 2's X at W0 averaged over strong-aug batches."""
    gen = make_generator(seed, f"verify-thm1-{k}")
    w0 = haar_orthogonal(16, gen)
    xs = []
    for _ in range(n_batches):
        x1, x2 = _views(gen, 128, strong_aug_amplitude(k))
        xs.append(lemma2_x(x1, x2, x1 @ w0.T, x2 @ w0.T))
    x = torch.stack(xs).mean(0)
    return w0, 0.5 * (x + x.T)


def check_theorem1_expm(seed: int) -> dict:
    """Small-step RK4 integration of W' = W X with X fixed equals W(0) expm(X t)."""
    w0, x = _strong_aug_x(seed, 2.0)
    t = 1.0 / float(torch.linalg.matrix_norm(x, ord=2))  # ||X|| t = 1
    n = 400
    (wt,) = rk4(lambda y: [y[0] @ x], [w0], t / n, n)
    err = _rel(wt, w0 @ torch.matrix_exp(x * t))
    return _check("theorem1: RK4 of W' = W X == W0 expm(X t)", err, 1e-10,
                  f"strong aug k = 2, X averaged over 16 batches, {n} steps to ||X|| t = 1")


def check_theorem1_vanishing(seed: int, k_values=(0.0, 2.0, 3.0)) -> dict:
    """#singular values of W0 expm(X T) -> 0 equals #negative eigenvalues of X.

    sigma_k(B D) lies in [sigma_min(B), sigma_max(B)] x the k-th largest e^{lambda T}; with
    T = ln(1e6) / min|lambda| the vanishing ones are <= sigma_max(W0) 1e-6 and the others
    >= sigma_min(W0) 1e6, separated by sqrt(sigma_min sigma_max)."""
    err, parts = 0, []
    for k in k_values:
        w0, x = _strong_aug_x(seed, k)
        lam = torch.linalg.eigvalsh(x)
        t = math.log(1e6) / float(lam.abs().min())
        s0 = torch.linalg.svdvals(w0)
        s = torch.linalg.svdvals(w0 @ torch.matrix_exp(x * t))
        thresh = float((s0.min() * s0.max()).sqrt())
        if 1e-15 * float(s.max()) > 1e-3 * thresh:  # SVD round-off would blur the count
            return _check("theorem1: #vanishing sv == #negative eig(X)", math.inf, 0.0,
                          f"k = {k}: spectrum too spread to resolve")
        vanish, neg = int((s < thresh).sum()), int((lam < 0).sum())
        err += abs(vanish - neg)
        parts.append(f"k={k:g}: {vanish} vanish / {neg} negative")
    return _check("theorem1: #vanishing sv == #negative eig(X)", float(err), 0.0,
                  "; ".join(parts))


def _two_layer_flow(x1: torch.Tensor, x2: torch.Tensor) -> Callable:
    def f(ws: list[torch.Tensor]) -> list[torch.Tensor]:
        w1, w2 = (w.detach().requires_grad_(True) for w in ws)
        val = paper_loss(x1 @ w1.T @ w2.T, x2 @ w1.T @ w2.T, "sum")
        return [-g for g in torch.autograd.grad(val, (w1, w2))]
    return f


def check_conservation(seed: int) -> dict:
    """W1 W1^T - W2^T W2 is conserved by the two-layer gradient flow (small-step RK4)."""
    gen = make_generator(seed, "verify-conservation")
    x1, x2 = _views(gen, 32, uniform_amplitude(0.1))
    w1, w2 = init_layers([seed], 2, 16, "spread", F64)
    w1, w2 = w1[0], w2[0]
    cons = lambda a, b: a @ a.T - b.T @ b  # noqa: E731
    c0 = cons(w1, w2)
    f = _two_layer_flow(x1, x2)
    g = f([w1, w2])
    h = 0.005 / max(float(torch.linalg.matrix_norm(gi, ord=2)) for gi in g)
    w1t, w2t = rk4(f, [w1, w2], h, 200)
    moved = _rel(w1t @ w1t.T, w1 @ w1.T)
    return _check("conservation: W1 W1^T - W2^T W2", _rel(cons(w1t, w2t), c0), 1e-9,
                  f"paper loss, batch 32, 200 RK4 steps; W1 W1^T itself moved {moved:.2e} "
                  "(relative)")


def check_theorem3(seed: int) -> dict:
    """Theorem 3: for aligned W1, W2 (V2 = U1) the singular value rates are
    s1 s2^2 (v1^T X v1) and s2 s1^2 (v1^T X v1); measured by central differences along the
    autograd flow W' = -dL/dW."""
    gen = make_generator(seed, "verify-theorem3")
    u1, v1, u2 = (haar_orthogonal(16, gen) for _ in range(3))
    k = torch.arange(16, dtype=F64)
    w1 = u1 @ torch.diag(torch.exp(-0.35 * k)) @ v1.T
    w2 = u2 @ torch.diag(1.5 * torch.exp(-0.3 * k)) @ u1.T  # aligned: V2 = U1
    x1, x2 = _views(gen, 64, uniform_amplitude(0.3))
    wd1, wd2 = _two_layer_flow(x1, x2)([w1, w2])
    xm = lemma2_x(x1, x2, x1 @ (w2 @ w1).T, x2 @ (w2 @ w1).T)
    p1, p2 = theorem3_rates(w1, w2, xm)
    h = 1e-6
    fd1 = (torch.linalg.svdvals(w1 + h * wd1) - torch.linalg.svdvals(w1 - h * wd1)) / (2 * h)
    fd2 = (torch.linalg.svdvals(w2 + h * wd2) - torch.linalg.svdvals(w2 - h * wd2)) / (2 * h)
    lemma4 = _rel(singular_value_rates(w1, wd1), fd1)
    err = max(_rel(p1, fd1), _rel(p2, fd2))
    return _check("theorem3: aligned singular value rates", err, 1e-6,
                  f"finite differences (h = {h:g}) vs Theorem 3 with Lemma 2's X; Lemma 4 "
                  f"(u^T W' v) agrees to {lemma4:.1e}")


def run_checks(seed: int = 0) -> list[dict]:
    """All checks, in the order of the paper (single-threaded: deterministic round-off)."""
    with single_threaded():
        return _all_checks(seed)


def _all_checks(seed: int) -> list[dict]:
    return [
        check_lemma1(seed, "paper"),
        check_lemma1(seed, "official"),
        check_grad_formulas(seed, "paper"),
        check_grad_formulas(seed, "official"),
        check_theorem1_expm(seed),
        check_theorem1_vanishing(seed),
        check_conservation(seed),
        check_theorem3(seed),
    ]


def format_table(checks: list[dict]) -> str:
    """Rows of (check, measured error, tolerance, PASS/FAIL) as aligned text."""
    width = max(len(c["name"]) for c in checks)
    rows = [f"{'check':<{width}}  {'error':>9}  {'tolerance':>9}  result"]
    for c in checks:
        rows.append(f"{c['name']:<{width}}  {c['error']:>9.2e}  {c['tolerance']:>9.0e}  "
                    f"{'PASS' if c['passed'] else 'FAIL'}")
    return "\n".join(rows)
