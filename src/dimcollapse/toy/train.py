"""The batched SGD loop shared by every toy experiment (SPEC §3: plain SGD, constant lr).

All R runs advance together: one forward of both views through the batched `LinearStack`, the
loss's closed-form gradient with respect to z, a hand-written backward, one SGD update. The loss
is summed over runs, so each run's gradient is its own.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import torch
from tqdm import tqdm

from dimcollapse.errors import UserError
from dimcollapse.toy.data import ViewBatches
from dimcollapse.toy.losses import LOSSES, REDUCTIONS
from dimcollapse.toy.nets import LinearStack


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread inside the block: 16x16 matrices gain nothing from threads, and
    one thread keeps reduction order, hence results, independent of the machine's core count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def gradients(net: LinearStack, x1: torch.Tensor, x2: torch.Tensor, loss: str,
              reduction: str = "mean", *, autograd: bool = False) -> list[torch.Tensor]:
    """dL/dW_l of the summed-over-runs loss on views x1, x2 (R, B, d), per layer (R, d, d).

    `autograd=True` differentiates `LOSSES[loss].value` with torch.autograd instead of using
    the closed-form gradient and hand-written backward (for tests)."""
    b = x1.shape[1]
    if autograd:
        ws = [w.detach().requires_grad_(True) for w in net.weights]
        saved, net.weights = net.weights, ws
        try:
            z = net.forward(torch.cat([x1, x2], 1))
            total = LOSSES[loss].value(z[:, :b], z[:, b:], reduction).sum()
            return list(torch.autograd.grad(total, ws))
        finally:
            net.weights = saved
    z, cache = net.forward(torch.cat([x1, x2], 1), keep=True)
    g1, g2 = LOSSES[loss].grad(z[:, :b], z[:, b:], reduction)
    return net.backward(cache, torch.cat([g1, g2], 1))


def train(net: LinearStack, batches: ViewBatches, *, loss: str, lr: torch.Tensor, steps: int,
          record_every: int, on_record: Callable[[int], None], reduction: str = "mean",
          progress: bool = True, desc: str = "toy") -> None:
    """Run `steps` SGD steps; call `on_record(step)` at step 0, every `record_every` steps and
    after the last step. lr: (R,) learning rate per run; `reduction` of the loss over the batch
    ("mean" or "sum", see `losses`).

    Raises UserError when a weight becomes non-finite (diverged: the lr is too large)."""
    if loss not in LOSSES:
        raise UserError(f"unknown toy loss {loss!r}: choose one of {', '.join(LOSSES)}")
    if reduction not in REDUCTIONS:
        raise UserError(f"unknown reduction {reduction!r}: choose one of {', '.join(REDUCTIONS)}")
    lr = torch.as_tensor(lr, dtype=net.weights[0].dtype).reshape(-1, 1, 1)
    bar = _progress(steps, progress, desc)
    try:
        for step in range(steps):
            if step % record_every == 0:
                _check_finite(net, step)
                on_record(step)
            x1, x2 = batches.next()
            net.sgd_step(gradients(net, x1, x2, loss, reduction), lr)
            if bar is not None and (step + 1) % 100 == 0:
                bar.update(100)
        _check_finite(net, steps)
        on_record(steps)
    finally:
        if bar is not None:
            bar.update(steps - bar.n)
            bar.close()


def _check_finite(net: LinearStack, step: int) -> None:
    bad = [r for r in range(net.num_runs)
           if not all(bool(torch.isfinite(w[r]).all()) for w in net.weights)]
    if bad:
        raise UserError(f"training diverged (non-finite weights) by step {step} in run(s) "
                        f"{bad}: lower --lr or --steps")


def _progress(total: int, enabled: bool, desc: str):
    if not enabled or not sys.stderr.isatty() or total < 1000:
        return None

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False)
