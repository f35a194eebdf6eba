"""Fig 5/6: dimensional collapse caused by implicit regularisation (Section 5, Theorems 2-3).

Two bias-free 16x16 layers z = W2 W1 x, weak noise (0.001 on every dim), lr 0.01, both layers
initialised with singular values exp(-0.35 k), k = 0..15, and Haar-random orthogonal factors.
Recorded every `record_every` steps: singular values of W1 and W2, the embedding spectrum on
1,000 fresh inputs, the alignment matrix |A| = |V2^T U1| with its diagonal mass and its mass in
blocks of near-equal singular values, and the conserved W1 W1^T - W2^T W2.

Several learning rates (`lrs`) train as one batched computation on the same data and init.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from dimcollapse.errors import UserError
from dimcollapse.spectrum.metrics import collapsed_dims
from dimcollapse.toy import data
from dimcollapse.toy.measure import eval_inputs, run_spectra, singular_values
from dimcollapse.toy.nets import LinearStack, init_layers
from dimcollapse.toy.settings import ToySettings, validate_common
from dimcollapse.toy.theory import (
    alignment_matrix,
    block_mass,
    diagonal_mass,
    near_equal_blocks,
    permutation_mass,
)
from dimcollapse.toy.train import single_threaded, train

COLLAPSE_DECADES = 5.0  # the count: eigenvalues 5+ decades below the largest
COLLAPSE_REL = 10.0 ** -COLLAPSE_DECADES  # as a `collapsed_dims` threshold (1e-5 exactly)


@dataclass(frozen=True)
class ImplicitRegConfig(ToySettings):
    """Paper/official settings of Fig 5/6 (SPEC §3)."""

    lrs: tuple[float, ...] = (0.01,)
    noise: float = 0.001
    init: str = "spread"
    block_rel_tol: float = 0.10

    @property
    def lr(self) -> float:  # the primary run's lr (for the shared validation)
        return min(self.lrs) if self.lrs else 0.0


def validate(cfg: ImplicitRegConfig) -> None:
    if not cfg.lrs:
        raise UserError("no learning rate given: pass one or more values to --lr")
    if cfg.noise < 0:
        raise UserError("--noise must be >= 0")
    validate_common(cfg, lr=cfg.lr, init=cfg.init)


def run_implicit_reg(cfg: ImplicitRegConfig = ImplicitRegConfig(), *,
                     progress: bool = True) -> dict:
    """Train one run per lr (batched); return the JSON-ready result (top level = first lr)."""
    validate(cfg)
    dtype = getattr(torch, cfg.dtype)
    r = len(cfg.lrs)
    seeds = [cfg.seed] * r
    amp = data.uniform_amplitude(cfg.noise, cfg.dim).expand(r, cfg.dim)
    rec: dict[str, list] = {k: [] for k in ("steps", "sv1", "sv2", "spec", "align", "cons")}
    with single_threaded():
        net = LinearStack(init_layers(seeds, 2, cfg.dim, cfg.init, dtype))
        batches = data.ViewBatches(seeds, amp, n_samples=cfg.n_samples,
                                   batch_size=cfg.batch_size, dtype=dtype)
        x_eval = eval_inputs(cfg.seed, cfg.eval_samples, cfg.dim)

        def record(step: int) -> None:
            w1, w2 = net.weights[0].double(), net.weights[1].double()
            rec["steps"].append(step)
            rec["sv1"].append(singular_values(w1))
            rec["sv2"].append(singular_values(w2))
            rec["spec"].append(run_spectra(net, x_eval))
            rec["align"].append(alignment_matrix(w1, w2).abs().numpy())
            c = w1 @ w1.transpose(1, 2) - w2.transpose(1, 2) @ w2
            rec["cons"].append(torch.linalg.matrix_norm(c, ord=2).numpy())

        train(net, batches, loss=cfg.loss, lr=torch.tensor(cfg.lrs), steps=cfg.steps,
              record_every=cfg.record_every, on_record=record, reduction=cfg.reduction,
              progress=progress, desc="implicit-reg")
    runs = [_run_record(cfg, i, rec) for i in range(r)]
    return {
        "experiment": "implicit-reg",
        "figure": "Fig 5, Fig 6",
        "config": asdict(cfg),
        **{k: v for k, v in runs[0].items()},
        "runs": runs,
    }


def _run_record(cfg: ImplicitRegConfig, i: int, rec: dict[str, list]) -> dict:
    sv1 = np.stack([s[i] for s in rec["sv1"]])
    sv2 = np.stack([s[i] for s in rec["sv2"]])
    spec = np.stack([s[i] for s in rec["spec"]])
    align = [a[i] for a in rec["align"]]
    cons = np.array([c[i] for c in rec["cons"]])
    diag, blockm, chance, grown, grown_mass, grown_chance, perm = [], [], [], [], [], [], []
    for t, a in enumerate(align):
        at = torch.from_numpy(a)
        blocks = near_equal_blocks(torch.from_numpy(sv1[t]), torch.from_numpy(sv2[t]),
                                   rel_tol=cfg.block_rel_tol)
        diag.append(diagonal_mass(at))
        perm.append(permutation_mass(at))
        blockm.append(block_mass(at, blocks))
        chance.append(sum(len(b) ** 2 for b in blocks) / cfg.dim**2)
        # pairs large against the conserved W1 W1^T - W2^T W2: where Theorem 2 applies
        m = int((np.minimum(sv1[t], sv2[t]) ** 2 > cons[t]).sum())
        grown.append(m)
        # share of each grown row of |A|^2 (rows have unit norm) inside its whole block
        block_of = {k: b for b in blocks for k in b}
        inside = sum(float((at[k, block_of[k]] ** 2).sum()) for k in range(m))
        grown_mass.append(inside / m if m else 0.0)
        grown_chance.append(sum(len(block_of[k]) for k in range(m)) / (m * cfg.dim) if m else 0.0)
    return {
        "lr": float(cfg.lrs[i]),
        "steps": list(rec["steps"]),
        "alignment_start": align[0].tolist(),
        "alignment_end": align[-1].tolist(),
        "alignment_diagonal_mass": diag,
        "alignment_block_mass": blockm,
        "alignment_block_chance": chance,
        "alignment_permutation_mass": perm,
        "grown_pairs": grown,
        "grown_alignment_mass": grown_mass,
        "grown_alignment_chance": grown_chance,
        "sv_w1_trajectory": sv1.tolist(),
        "sv_w2_trajectory": sv2.tolist(),
        "embedding_spectrum_trajectory": spec.tolist(),
        "conserved_spectral_norm": cons.tolist(),
        "collapsed_start": collapsed_dims(spec[0], COLLAPSE_REL),
        "collapsed_end": collapsed_dims(spec[-1], COLLAPSE_REL),
        "collapse_decades": COLLAPSE_DECADES,
    }
