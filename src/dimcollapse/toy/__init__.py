"""The paper's theory as runnable experiments (Sections 4-5, Appendix B-C; SPEC §2-3).

- `run_strong_aug` (Fig 3), `run_implicit_reg` (Fig 5/6), `run_depth` (Fig 11): each trains a
  whole sweep as one batched computation and returns a JSON-ready dict; configs are frozen
  dataclasses with the paper's settings as defaults.
- `run_checks`: numeric checks of Lemma 1-2, the gradient formulas, Theorem 1, the conserved
  W1 W1^T - W2^T W2 and Theorem 3.
- `outputs`: run + write JSON/PNG; `readings`: one-line readings computed from results.
- Building blocks: `losses` (Eqn 2 and the official toy loss, closed-form gradients), `theory`
  (Lemma 2's X, alignment), `nets.LinearStack` (batched linear stacks), `train.train`.
"""

from dimcollapse.toy.depth import DepthConfig, run_depth
from dimcollapse.toy.implicit_reg import ImplicitRegConfig, run_implicit_reg
from dimcollapse.toy.losses import LOSSES, official_loss, paper_loss
from dimcollapse.toy.strong_aug import StrongAugConfig, run_strong_aug
from dimcollapse.toy.theory import lemma2_x, official_x
from dimcollapse.toy.verify import run_checks

__all__ = [
    "LOSSES", "DepthConfig", "ImplicitRegConfig", "StrongAugConfig", "lemma2_x", "official_loss",
    "official_x", "paper_loss", "run_checks", "run_depth", "run_implicit_reg", "run_strong_aug",
]
