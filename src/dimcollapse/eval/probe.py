"""Linear probe: L2-regularised multinomial logistic regression on frozen, standardised features.

The paper measures representation quality by a linear classifier on the frozen backbone output r
(Section 6, Table 1; Appendix F probes the sub-vector r[:, :d0]: pass `x[:, :d0]`). The official
code trains it by SGD for 100 epochs; on cached features the same convex problem is solved to
convergence in seconds by full-batch L-BFGS, as in SimCLR's and Kornblith et al.'s (2019)
linear evaluation. The objective, with X standardised by the train split's mean and std, is

    F(W, b) = (1/N) sum_i [logsumexp(W x_i + b) - (W x_i + b)_{y_i}] + (l2 / 2) ||W||_F^2

(mean cross-entropy; the bias is not penalised). It equals scikit-learn's `LogisticRegression`
objective divided by C * N, so `C = 1 / (l2 * N)` gives the same minimiser. F is strictly convex
in W for l2 > 0; the solver stops when max |dF| <= tol, and the result reports whether it got
there (`converged`), after how many iterations, and the final gradient norm.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from dimcollapse.catalogue import PROBE_L2, PROBE_L2_GRID
from dimcollapse.errors import UserError
from dimcollapse.eval._inputs import (
    as_features,
    as_labels,
    check_same_dim,
    raise_not_finite,
    topk_correct,
)
from dimcollapse.eval._lbfgs import SOLVER, minimize_lbfgs
from dimcollapse.eval.standardize import Standardizer, standardize_fit

# Default L2 strength on the mean loss (scikit-learn C = 1/(l2 N): C = 0.002 at N = 50,000).
# Held-out selection (`select_l2`, grid 1e-4..1e-1, 20% of train held out, 2 seeds) on the two
# feature sets we had, random-init ResNet-18 on CIFAR-10 and the synthetic benchmark features,
# picked 1e-2 in 2 of 4 splits (1e-4 and 1e-1 once each); test top-1 is flat within ~0.5 points
# over 1e-3..1e-1 on both. docs/evaluation.md has the table; prefer `select_l2` for final numbers.
DEFAULT_L2 = PROBE_L2
# Grid searched by `select_l2`: powers of ten; it reaches 1e-6 because trained CIFAR features
# picked the old lower end (1e-4) in every 60-step reproduce arm.
DEFAULT_L2_GRID = PROBE_L2_GRID


def probe_objective(
    weight: Tensor, bias: Tensor, x: Tensor, y: Tensor, l2: float, *,
    chunk_rows: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """F(W, b) above and its analytic gradient.

    Shapes: weight (C, d), bias (C,), x (N, d), y (N,) int -> (loss () float64, grad_w (C, d),
    grad_b (C,)). With G = (softmax(X W^T + b) - onehot(y)) / N: dF/dW = G^T X + l2 W and
    dF/db = sum_i G_i. On CPU the rows go through in chunks of `chunk_rows` (default: 8 MiB of
    x, 4,096 rows at d = 512), so each chunk of X is still in cache when G^T X needs it again
    (one pass over memory instead of two) while parallel regions stay few; partial losses are
    summed in float64, so line-search comparisons are not limited by float32 sums.
    """
    n = x.shape[0]
    if chunk_rows is None:
        chunk_rows = max(256, (8 << 20) // max(1, x.shape[1] * x.element_size()))
    step = n if x.is_cuda else chunk_rows
    grad_w = torch.zeros_like(weight)
    grad_b = torch.zeros_like(bias)
    nll = torch.zeros((), dtype=torch.float64, device=x.device)
    minus_one = torch.full((min(step, n), 1), -1.0, dtype=x.dtype, device=x.device)
    for i in range(0, n, step):
        xc, yc = x[i : i + step], y[i : i + step, None]
        logits = torch.addmm(bias, xc, weight.t())
        lse = logits.logsumexp(dim=1, keepdim=True)
        nll += (lse - logits.gather(1, yc)).sum().to(torch.float64)
        g = logits.sub_(lse).exp_().scatter_add_(1, yc, minus_one[: len(xc)])
        grad_w.addmm_(g.t(), xc)
        grad_b += g.sum(dim=0)
    grad_w.div_(n).add_(weight, alpha=l2)
    grad_b.div_(n)
    loss = nll / n + 0.5 * l2 * weight.to(torch.float64).pow(2).sum()
    return loss, grad_w, grad_b


def curvature_preconditioner(second_moment: Tensor, l2: float, num_classes: int) -> Tensor:
    """T = L^(-1) with L L^T = S / C + l2 I, S = E[x x^T] of the standardised train features.

    Shape: S (d, d) -> (d, d) lower-triangular, float64. At W = 0 the Hessian of F is
    (I - 11^T / C) / C (x) S + l2 I, so in the variables W~ with W = W~ T each row's curvature
    T (S / C + l2 I) T^T is the identity: L-BFGS's first steps are nearly Newton steps instead
    of crawling along the small-variance directions of correlated features. S comes from all
    rows (`standardize_fit(..., second_moment=True)`): an estimate from a subset misses the rare
    directions of low-rank features (random-init ResNet-18 features of CIFAR-10 took 747
    iterations with S from 12,500 of the 50,000 rows, 43 with all of them). The minimiser does
    not depend on T, so when S / C + l2 I is not numerically positive definite (S from a float32
    Gram of collapsed features has eigenvalues of -1e-5 next to a tiny l2) the ridge grows
    tenfold from 1e-10 x the mean diagonal until the factorisation succeeds.
    """
    s = second_moment.to(torch.float64) / num_classes
    eye = torch.eye(s.shape[0], dtype=s.dtype, device=s.device)
    ridge = l2
    floor = 1e-10 * float(s.diagonal().mean().clamp_min(1.0 / num_classes))
    for _ in range(20):
        chol, info = torch.linalg.cholesky_ex(s + ridge * eye)
        if int(info) == 0:
            return torch.linalg.solve_triangular(chol, eye, upper=False)
        ridge = max(ridge, floor) * 10.0
    raise RuntimeError(f"probe preconditioner: S / C + {ridge:g} I is still not positive definite")


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of `linear_probe`. Accuracies are in percent (0-100) on the test split."""

    top1: float
    top5: float
    train_top1: float
    l2: float
    iterations: int
    func_evals: int
    converged: bool
    stop_reason: str  # "tol" | "max_iter" | "stalled" (no further decrease at working precision)
    grad_max_abs: float  # max |dF| at the returned solution
    loss: float  # F at the returned solution (includes the L2 term)
    tol: float
    max_iter: int
    n_train: int
    n_test: int
    dim: int
    num_classes: int
    dtype: str
    seconds: float
    weight: Tensor = field(repr=False)  # (C, d), acts on standardised features
    bias: Tensor = field(repr=False)  # (C,)
    standardizer: Standardizer = field(repr=False)

    def to_dict(self) -> dict:
        """Plain JSON-able values (no tensors)."""
        keys = [
            "top1", "top5", "train_top1", "l2", "iterations", "func_evals", "converged",
            "stop_reason", "grad_max_abs", "loss", "tol", "max_iter", "n_train", "n_test", "dim",
            "num_classes", "dtype", "seconds",
        ]
        d = {k: getattr(self, k) for k in keys}
        d.update(accuracy_unit="percent", solver=SOLVER, objective=(
            "mean cross-entropy + l2/2 ||W||^2 on train-standardised features"))
        return d

    def predict_scores(self, x: Tensor) -> Tensor:
        """Class scores (logits) for raw (unstandardised) features. Shape: (n, d) -> (n, C)."""
        xs = self.standardizer(torch.as_tensor(x), self.weight.dtype)
        return torch.addmm(self.bias, xs, self.weight.t())


def linear_probe(
    train_x,
    train_y,
    test_x,
    test_y,
    *,
    l2: float = DEFAULT_L2,
    max_iter: int = 1000,
    tol: float = 1e-4,
    num_classes: int | None = None,
    history_size: int = 20,
    precondition: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> ProbeResult:
    """Fit the L2-regularised multinomial logistic regression above; score top-1/top-5 on test.

    Shapes: train_x (N, d), train_y (N,), test_x (M, d), test_y (M,); numpy or torch, any float
    dtype. Features are standardised with the train split's statistics (`fit_standardizer`),
    applied to both splits. For Appendix F's sub-vector probe pass `train_x[:, :d0]` etc.

    Solver: full-batch L-BFGS (`history_size` pairs, Armijo backtracking) from W = 0, b = 0,
    preconditioned by `curvature_preconditioner` (`precondition=False` turns that off), run
    until max |dF/dW|, |dF/db| <= `tol` (the gradient of F itself, the same test as
    scikit-learn's lbfgs `tol`) or `max_iter` iterations. The gradient is analytic
    (`probe_objective`): one evaluation is two (N, d) x (d, C) products. Deterministic: no random
    draws; same inputs and thread count give the same bits. float32 (default) is about twice as
    fast as float64 and reaches tol = 1e-4 on standardised features; float64 goes further.
    """
    if not (l2 > 0 and math.isfinite(l2)):
        raise UserError(f"l2 = {l2}: pass a positive regularisation strength (default 1e-2)")
    if max_iter < 1 or not tol > 0:
        raise UserError(f"max_iter = {max_iter}, tol = {tol}: pass max_iter >= 1 and tol > 0")
    t0 = time.perf_counter()
    in_dtype = torch.float64 if _is_float64(train_x) else dtype
    xtr = as_features(train_x, "train features", device=device, dtype=in_dtype,
                      check_finite=False)
    xte = as_features(test_x, "test features", device=device, dtype=in_dtype,
                      check_finite=False)
    check_same_dim(xtr, xte, "linear probe")
    ytr = as_labels(train_y, "train labels", xtr.shape[0], device=device)
    yte = as_labels(test_y, "test labels", xte.shape[0], device=device)
    top_label = int(max(ytr.max(), yte.max()))
    c = num_classes or top_label + 1
    if top_label >= c:
        raise UserError(f"labels go up to {top_label} but num_classes = {c}: pass a larger value")
    std, xtr, second_moment = standardize_fit(xtr, dtype, second_moment=precondition)
    xte = std(xte, dtype)
    if not torch.isfinite(xte.sum()):
        raise_not_finite("test features")
    n, d = xtr.shape

    # Optimise over theta = [W~ (C*d), b~ (C)] with W = W~ T, b = sqrt(C) b~, so
    # dF/dW~ = dF/dW T^T (see curvature_preconditioner: both blocks start with curvature ~ 1).
    if precondition:
        assert second_moment is not None  # standardize_fit returns it when asked to
        t_mat = curvature_preconditioner(second_moment, l2, c).to(dtype)
    else:
        t_mat = torch.eye(d, dtype=dtype, device=device)
    b_scale = math.sqrt(c) if precondition else 1.0

    def unpack(theta: Tensor) -> tuple[Tensor, Tensor]:
        return theta[: c * d].view(c, d) @ t_mat, b_scale * theta[c * d :]

    def fun(theta: Tensor) -> tuple[float, Tensor, float]:
        w, b = unpack(theta)
        loss, gw, gb = probe_objective(w, b, xtr, ytr, l2)
        stat = float(torch.maximum(gw.abs().max(), gb.abs().max()))
        return float(loss), torch.cat([(gw @ t_mat.t()).reshape(-1), b_scale * gb]), stat

    out = minimize_lbfgs(
        fun, torch.zeros(c * d + c, dtype=dtype, device=device), tol=tol, max_iter=max_iter,
        history_size=history_size,
    )
    w, b = unpack(out.x)
    train_top1 = topk_correct(torch.addmm(b, xtr, w.t()), ytr, 1) / n
    test_scores = torch.addmm(b, xte, w.t())
    top1 = topk_correct(test_scores, yte, 1) / len(yte)
    top5 = topk_correct(test_scores, yte, 5) / len(yte)
    return ProbeResult(
        top1=100.0 * top1, top5=100.0 * top5, train_top1=100.0 * train_top1, l2=float(l2),
        iterations=out.iterations, func_evals=out.func_evals, converged=out.stop_reason == "tol",
        stop_reason=out.stop_reason, grad_max_abs=out.stat, loss=out.f, tol=float(tol),
        max_iter=int(max_iter), n_train=n, n_test=len(yte), dim=d, num_classes=c,
        dtype=str(dtype).removeprefix("torch."), seconds=time.perf_counter() - t0,
        weight=w, bias=b, standardizer=std,
    )


def _is_float64(x) -> bool:
    return getattr(x, "dtype", None) in (torch.float64, np.float64)

