"""Fig 11 (Appendix C): more layers collapse more embedding dimensions, with or without ReLU.

L = 1..4 bias-free 16x16 layers, linear or with ReLU between layers, weak noise (0.001 on every
dim), every layer initialised with the same scheme (default: singular values exp(-0.35 k) with
Haar-random factors, as Fig 5/6). All 2 x 4 runs train as one batched computation, sharing data,
noise and the initial layers (an L = 2 run starts from the first two layers of the L = 4 run).
A collapsed dimension is an embedding eigenvalue below `rel_threshold` (1e-4) x the largest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from dimcollapse.errors import UserError
from dimcollapse.spectrum.metrics import collapsed_dims
from dimcollapse.toy import data
from dimcollapse.toy.measure import eval_inputs, run_spectra
from dimcollapse.toy.nets import LinearStack, init_layers
from dimcollapse.toy.settings import ToySettings, validate_common
from dimcollapse.toy.train import single_threaded, train

REL_THRESHOLD = 1e-4


@dataclass(frozen=True)
class DepthConfig(ToySettings):
    """Settings of Fig 11 (SPEC §3; lr and noise as Fig 5/6, which the paper does not restate)."""

    depths: tuple[int, ...] = (1, 2, 3, 4)
    relu: tuple[bool, ...] = (False, True)
    lr: float = 0.01
    noise: float = 0.001
    init: str = "spread"
    rel_threshold: float = REL_THRESHOLD


def validate(cfg: DepthConfig) -> None:
    if not cfg.depths or min(cfg.depths) < 1:
        raise UserError("--depths must be one or more integers >= 1")
    if cfg.noise < 0:
        raise UserError("--noise must be >= 0")
    validate_common(cfg, lr=cfg.lr, init=cfg.init)


def run_depth(cfg: DepthConfig = DepthConfig(), *, progress: bool = True) -> dict:
    """Train every (depth, relu) pair as one batched computation; return the JSON-ready result."""
    validate(cfg)
    dtype = getattr(torch, cfg.dtype)
    arms = [(d, rl) for rl in cfg.relu for d in cfg.depths]
    r = len(arms)
    seeds = [cfg.seed] * r
    amp = data.uniform_amplitude(cfg.noise, cfg.dim).expand(r, cfg.dim)
    steps, spectra = [], []
    with single_threaded():
        net = LinearStack(init_layers(seeds, max(cfg.depths), cfg.dim, cfg.init, dtype),
                          depth=[d for d, _ in arms], relu=[rl for _, rl in arms])
        batches = data.ViewBatches(seeds, amp, n_samples=cfg.n_samples,
                                   batch_size=cfg.batch_size, dtype=dtype)
        x_eval = eval_inputs(cfg.seed, cfg.eval_samples, cfg.dim)

        def record(step: int) -> None:
            steps.append(step)
            spectra.append(run_spectra(net, x_eval))

        train(net, batches, loss=cfg.loss, lr=torch.full((r,), cfg.lr), steps=cfg.steps,
              record_every=cfg.record_every, on_record=record, reduction=cfg.reduction,
              progress=progress, desc="depth")
    traj = np.stack(spectra, 1)  # (R, T, d)
    runs = []
    for i, (d, rl) in enumerate(arms):
        start, end = traj[i, 0], traj[i, -1]
        runs.append({
            "layers": int(d),
            "relu": bool(rl),
            "embedding_spectrum_start": start.tolist(),
            "embedding_spectrum": end.tolist(),
            "collapsed_start": collapsed_dims(start, cfg.rel_threshold),
            "collapsed_end": collapsed_dims(end, cfg.rel_threshold),
            "collapsed_trajectory": [collapsed_dims(s, cfg.rel_threshold) for s in traj[i]],
        })
    return {
        "experiment": "depth",
        "figure": "Fig 11",
        "config": asdict(cfg),
        "trajectory_steps": steps,
        "runs": runs,
    }
