"""Benchmark: the whole Fig 3 sweep, batched, against one run at a time in the official style.

Ours: `run_strong_aug` with the paper settings (6 k values, 10,000 steps, lr 0.001, batch 128,
paper loss with mean reduction): one batched computation with the closed-form gradient,
singular values every 100 steps, X averaged over 16 probe batches at the start and the end,
the embedding spectrum on 1,000 fresh inputs.

Baseline: the official toy code's structure (toy_task/case_1.py), one k after the other, each
with its own `nn.Linear(16, 16, bias=False)` (same orthogonal init) and `torch.optim.SGD`;
a batch of 128 distinct indices per step (numpy `Generator.choice`, cheaper than the official
legacy `np.random.choice`, so the baseline is if anything faster), noise by `torch.randn`, the
same loss written for autograd, `loss.backward()`, `optimizer.step()`; the same measurements
(singular values every 100 steps, X at start and end, the spectrum at the end, `np.cov`-based
as the official code). Same process, both single-threaded (16 x 16 matrices; one thread is fastest).

The runs use different random streams, so they are compared on their outcome (the k = 2
clean/noisy column-norm ratio), not bit for bit. Target (issue 2): speedup >= 5.
The last line of output is one JSON object.

    .venv/bin/python bench/bench_toy.py [--steps 10000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from dimcollapse.toy import data
from dimcollapse.toy.measure import XProbe
from dimcollapse.toy.nets import init_layers
from dimcollapse.toy.strong_aug import NOISY_FROM, StrongAugConfig, column_norms, run_strong_aug


def eqn2_loss_autograd(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Eqn 2 (mean over i) the straightforward way: cdist, a masked logits matrix, log-softmax."""
    n = z1.shape[0]
    d2 = torch.cdist(z1, z1) ** 2
    pos = ((z1 - z2) ** 2).sum(-1)
    eye = torch.eye(n, dtype=torch.bool)
    logits = torch.where(eye, -0.5 * pos[:, None].expand(n, n), -0.5 * d2)
    return -torch.diagonal(torch.log_softmax(logits, -1)).mean()


def augment(x: torch.Tensor, k: float) -> torch.Tensor:
    """x + noise of amplitude k on dims 8-15 (as the official `augmentation`)."""
    n, d = x.shape
    return x + torch.cat([torch.zeros(n, NOISY_FROM), torch.randn(n, d - NOISY_FROM) * k], 1)


def baseline_sweep(cfg: StrongAugConfig) -> dict:
    """One k at a time, in the official code's style. Returns per-k final weights."""
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    x = torch.randn(cfg.n_samples, cfg.dim)
    w0 = init_layers([cfg.seed], 1, cfg.dim, cfg.init, torch.float32)[0][0]
    amp = torch.stack([data.strong_aug_amplitude(k) for k in cfg.k_values])
    probe = XProbe([cfg.seed] * len(cfg.k_values), amp, n_batches=cfg.x_probe_batches,
                   n_samples=cfg.n_samples, batch_size=cfg.batch_size)
    out = {}
    for k in cfg.k_values:
        net = torch.nn.Linear(cfg.dim, cfg.dim, bias=False)
        net.weight.data = w0.clone()
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, weight_decay=0)
        probe.eigenvalues(net.weight.data[None].double(), "paper")  # X at the start (1 run)
        svs = []
        for step in range(cfg.steps):
            if step % cfg.record_every == 0:
                svs.append(np.linalg.svd(net.weight.data.numpy(), compute_uv=False))
            idx = rng.choice(cfg.n_samples, cfg.batch_size, replace=False)
            xi = x[idx]
            x1, x2 = augment(xi, k), augment(xi, k)
            loss = eqn2_loss_autograd(net(x1), net(x2))
            opt.zero_grad()
            loss.backward()
            opt.step()
        svs.append(np.linalg.svd(net.weight.data.numpy(), compute_uv=False))
        probe.eigenvalues(net.weight.data[None].double(), "paper")  # X at the end
        z = net(torch.randn(cfg.eval_samples, cfg.dim)).detach().numpy()
        np.linalg.svd(np.cov(z.T))  # the official spectrum
        out[k] = net.weight.data.double().numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="SGD steps per run")
    args = parser.parse_args()
    cfg = StrongAugConfig(steps=args.steps)
    torch.set_num_threads(1)

    t0 = time.perf_counter()
    ours = run_strong_aug(cfg, progress=False)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = baseline_sweep(cfg)
    t_base = time.perf_counter() - t0

    ratio = lambda w: column_norms(np.asarray(w))[0] / column_norms(np.asarray(w))[1]  # noqa: E731
    ours_k2 = next(r["clean_over_noisy_end"] for r in ours["runs"] if r["k"] == 2.0)
    base_k2 = ratio(base[2.0]) if 2.0 in base else None
    runs = len(cfg.k_values)
    print(f"Fig 3 sweep: {runs} runs x {cfg.steps} steps (batch {cfg.batch_size}, "
          f"sv every {cfg.record_every} steps), one thread")
    print(f"  batched (ours)           {t_ours:8.2f} s  "
          f"({t_ours / (runs * cfg.steps) * 1e6:.1f} us per run-step)")
    print(f"  one run at a time (ref.) {t_base:8.2f} s  "
          f"({t_base / (runs * cfg.steps) * 1e6:.1f} us per run-step)")
    print(f"  speedup {t_base / t_ours:.1f}x (target >= 5x)")
    if base_k2 is not None:
        print(f"  outcome check, k = 2 clean/noisy column norm: ours {ours_k2:.2f}, "
              f"baseline {base_k2:.2f}")
    print(json.dumps({"speedup": t_base / t_ours, "ours_s": t_ours, "baseline_s": t_base,
                      "runs": runs, "steps": cfg.steps, "threads": 1,
                      "k2_ratio_ours": ours_k2, "k2_ratio_baseline": base_k2}))


if __name__ == "__main__":
    main()
