"""Evaluation of frozen representations: linear probe, weighted kNN, checkpoint loading.

- `linear_probe` (probe.py): L2-regularised multinomial logistic regression on train-standardised
  features, solved to convergence by preconditioned L-BFGS; `select_l2` (l2_select.py) picks
  its L2 strength on held-out train rows.
- `knn_classify` (knn.py): cosine kNN, k = 200, votes weighted exp(s / 0.07) (Wu et al. 2018).
- `load_checkpoint` (checkpoints.py): our checkpoints, the official DirectCLR files and plain
  torchvision ResNet state dicts, read with torch.load(weights_only=True).
"""

from dimcollapse.eval.checkpoints import SOURCES, LoadedCheckpoint, detect_format, load_checkpoint
from dimcollapse.eval.knn import DEFAULT_K, DEFAULT_TEMPERATURE, KNNResult, knn_classify
from dimcollapse.eval.l2_select import L2Selection, select_l2
from dimcollapse.eval.probe import DEFAULT_L2, DEFAULT_L2_GRID, ProbeResult, linear_probe
from dimcollapse.safe_load import UnsafeLoadWarning

__all__ = [
    "DEFAULT_K", "DEFAULT_L2", "DEFAULT_L2_GRID", "DEFAULT_TEMPERATURE", "SOURCES", "KNNResult",
    "L2Selection", "LoadedCheckpoint", "ProbeResult", "UnsafeLoadWarning", "detect_format",
    "knn_classify", "linear_probe", "load_checkpoint", "select_l2",
]
