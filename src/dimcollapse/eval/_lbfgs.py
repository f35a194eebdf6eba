"""A small full-batch L-BFGS for smooth, strictly convex objectives (the linear probe).

Nocedal and Wright, Numerical Optimization (2006), Algorithm 7.4 (two-loop recursion) and 7.5,
with a backtracking line search (Armijo, Algorithm 3.1; safeguarded interpolation) that falls
back on Hager and Zhang's approximate Wolfe test where f is too flat to compare in floating
point. For a strictly convex objective every step has s^T y > 0, so the curvature pairs stay
valid without a Wolfe curvature test. The caller supplies the stopping statistic (the probe
stops on the max-abs gradient of the *unpreconditioned* objective), which is why this exists
instead of `torch.optim.LBFGS`, whose stopping test sees only the gradient it is handed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

# What probe.json's "solver" says: L-BFGS with Armijo backtracking (approximate-Wolfe fallback);
# there is no strong Wolfe line search here.
SOLVER = "lbfgs-armijo"


@dataclass
class LBFGSOutcome:
    x: Tensor  # minimiser found, same shape as x0
    f: float
    g: Tensor
    stat: float  # the caller's stopping statistic at x
    iterations: int
    func_evals: int
    stop_reason: str  # "tol" | "max_iter" | "stalled"


def minimize_lbfgs(
    fun: Callable[[Tensor], tuple[float, Tensor, float]],
    x0: Tensor,
    *,
    tol: float,
    max_iter: int,
    history_size: int = 20,
    c1: float = 1e-4,
    max_backtracks: int = 30,
    f_noise: float | None = None,
    patience: int = 10,
) -> LBFGSOutcome:
    """Minimise `fun` from `x0`; stop when the statistic `fun` returns is <= `tol`.

    `fun(x) -> (f, grad, stat)` with x and grad 1-D tensors of the same shape. Deterministic.
    A step t along d is accepted by Armijo's test, or, once f changes by less than its rounding
    error (`f_noise` * |f|, default 10 eps of x's dtype), by Hager and Zhang's (2005)
    approximate Wolfe test on the slope phi'(t) = grad(x + t d)^T d, which stays accurate when
    f no longer is: -0.9 |phi'(0)| <= phi'(t) <= 0.8 |phi'(0)|. "stalled" means `patience`
    iterations in a row lowered neither f nor the best statistic so far (precision exhausted),
    or no step length decreased f.
    """
    if f_noise is None:
        f_noise = 10 * torch.finfo(x0.dtype).eps
    x = x0.clone()
    f, g, stat = fun(x)
    evals, it, idle, best_stat = 1, 0, 0, stat
    s_hist: list[Tensor] = []
    y_hist: list[Tensor] = []
    rho_hist: list[float] = []
    while True:
        if stat <= tol:
            return LBFGSOutcome(x, f, g, stat, it, evals, "tol")
        if it >= max_iter:
            return LBFGSOutcome(x, f, g, stat, it, evals, "max_iter")
        d = _two_loop(g, s_hist, y_hist, rho_hist)
        slope = -float(g @ d)
        if not slope > 0:  # lost descent through round-off: restart from steepest descent
            s_hist.clear()
            y_hist.clear()
            rho_hist.clear()
            d, slope = -g, float(g @ g)
        t, accepted = 1.0, False
        for _ in range(max_backtracks):
            x_new = x + t * d
            f_new, g_new, stat_new = fun(x_new)
            evals += 1
            dphi = float(g_new @ d)
            armijo = f_new <= f - c1 * t * slope
            approx_wolfe = f_new <= f + f_noise * abs(f) and -0.9 * slope <= dphi <= 0.8 * slope
            if armijo or approx_wolfe:
                accepted = True
                break
            if dphi > 0:  # overshot the minimum along d: secant step on the slope
                t_new = t * slope / (slope + dphi)
            else:  # minimiser of the quadratic through f, phi'(0) and f(t)
                denom = 2.0 * (f_new - f + slope * t)
                t_new = slope * t * t / denom if denom > 0 else 0.5 * t
            t = min(max(t_new, 0.1 * t), 0.6 * t)
        if not accepted:
            return LBFGSOutcome(x, f, g, stat, it, evals, "stalled")
        idle = idle + 1 if (f_new >= f and stat_new >= best_stat) else 0
        best_stat = min(best_stat, stat_new)
        s, y = x_new - x, g_new - g
        sy = float(s @ y)
        if sy > 1e-12 * float(y @ y):
            if len(s_hist) == history_size:
                s_hist.pop(0)
                y_hist.pop(0)
                rho_hist.pop(0)
            s_hist.append(s)
            y_hist.append(y)
            rho_hist.append(1.0 / sy)
        x, f, g, stat = x_new, f_new, g_new, stat_new
        it += 1
        if idle >= patience or not torch.any(s != 0):
            return LBFGSOutcome(x, f, g, stat, it, evals, "stalled")


def _two_loop(g: Tensor, s_hist, y_hist, rho_hist) -> Tensor:
    """-H g for the L-BFGS inverse-Hessian estimate H (initial H0 = gamma I, gamma = s'y / y'y)."""
    q = g.clone()
    alphas = []
    for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist), strict=True):
        a = rho * float(s @ q)
        q.add_(y, alpha=-a)
        alphas.append(a)
    if s_hist:
        q.mul_(1.0 / (rho_hist[-1] * float(y_hist[-1] @ y_hist[-1])))
    for s, y, rho, a in zip(s_hist, y_hist, rho_hist, reversed(alphas), strict=True):
        b = rho * float(y @ q)
        q.add_(s, alpha=a - b)
    return q.neg_()
