"""Covariance spectra (Jing et al. 2022, Eqn 1) and collapse metrics, in memory or streaming.

    covariance_spectrum(z, normalize=True)             # in memory, float64, descending
    acc = SpectrumAccumulator(d, normalize=True)       # streaming, O(d^2) memory, DDP-mergeable
    acc.update(batch); acc.summary()                   # spectrum + RankMe, alpha-ReQ, ...
    spectrum_of_file("emb.npy", normalize=True)        # a .npy/.pt file, chunk by chunk

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
from dimcollapse.spectrum.metrics import (
    ALPHA_REQ_RANKS,
    COLLAPSE_REL_THRESHOLD,
    RANKME_EPS,
    AlphaReQ,
    StdSummary,
    alpha_req,
    collapsed_dims,
    normalized_std,
    rankme,
    rankme_from_singular_values,
)
from dimcollapse.spectrum.summary import SpectrumSummary

__all__ = [
    "ALPHA_REQ_RANKS",
    "COLLAPSE_REL_THRESHOLD",
    "RANKME_EPS",
    "RAW_MAX_SAMPLES",
    "AlphaReQ",
    "EmbeddingsFile",
    "SpectrumAccumulator",
    "SpectrumSummary",
    "StdSummary",
    "alpha_req",
    "collapsed_dims",
    "covariance_matrix",
    "covariance_spectrum",
    "eigvalsh_descending",
    "l2_normalize_rows",
    "normalized_std",
    "open_embeddings",
    "rankme",
    "rankme_from_singular_values",
    "spectrum_of_file",
]
