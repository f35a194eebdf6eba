"""Covariance spectra (Jing et al. 2022, Eqn 1) and collapse metrics, in memory or streaming.

    covariance_spectrum(z, normalize=True)             # in memory, float64, descending
    acc = SpectrumAccumulator(d, normalize=True)       # streaming, O(d^2) memory, DDP-mergeable
    acc.update(batch); acc.summary()                   # spectrum + RankMe, alpha-ReQ, ...
    spectrum_of_file("emb.npy", normalize=True)        # a .npy/.pt file, chunk by chunk
    effective_rank, nesum, lidar / LidarAccumulator    # more label-free metrics
    collapse_verdict(...)                              # "complete" | "dimensional" | "none"

See docs/spectrum.md for definitions, citations and the JSON keys.
"""

from dimcollapse.spectrum.accumulator import RAW_MAX_SAMPLES, SpectrumAccumulator
from dimcollapse.spectrum.covariance import (
    covariance_matrix,
    covariance_spectrum,
    eigvalsh_descending,
    l2_normalize_rows,
)
from dimcollapse.spectrum.io import EmbeddingsFile, open_embeddings, spectrum_of_file
from dimcollapse.spectrum.lidar import (
    LIDAR_DELTA,
    LIDAR_EPS,
    LidarAccumulator,
    lidar,
    lidar_eigenvalues,
    lidar_from_eigenvalues,
    lidar_scatter,
)
from dimcollapse.spectrum.metrics import (
    ALPHA_REQ_RANKS,
    COLLAPSE_REL_THRESHOLD,
    RANKME_EPS,
    AlphaReQ,
    StdSummary,
    alpha_req,
    collapsed_dims,
    effective_rank,
    effective_rank_from_singular_values,
    nesum,
    normalized_std,
    rankme,
    rankme_from_singular_values,
)
from dimcollapse.spectrum.summary import SpectrumSummary
from dimcollapse.spectrum.verdict import (
    COMPLETE_COLLAPSE_THRESHOLD,
    VERDICTS,
    collapse_verdict,
    collapsed_dims_within_rank,
    max_sample_rank,
    normalized_total_variance,
)

__all__ = [
    "ALPHA_REQ_RANKS",
    "COLLAPSE_REL_THRESHOLD",
    "COMPLETE_COLLAPSE_THRESHOLD",
    "LIDAR_DELTA",
    "LIDAR_EPS",
    "RANKME_EPS",
    "RAW_MAX_SAMPLES",
    "VERDICTS",
    "AlphaReQ",
    "EmbeddingsFile",
    "LidarAccumulator",
    "SpectrumAccumulator",
    "SpectrumSummary",
    "StdSummary",
    "alpha_req",
    "collapse_verdict",
    "collapsed_dims",
    "collapsed_dims_within_rank",
    "covariance_matrix",
    "covariance_spectrum",
    "effective_rank",
    "effective_rank_from_singular_values",
    "eigvalsh_descending",
    "l2_normalize_rows",
    "lidar",
    "lidar_eigenvalues",
    "lidar_from_eigenvalues",
    "lidar_scatter",
    "max_sample_rank",
    "nesum",
    "normalized_std",
    "normalized_total_variance",
    "open_embeddings",
    "rankme",
    "rankme_from_singular_values",
    "spectrum_of_file",
]
