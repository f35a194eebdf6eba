"""Explanations of the paper's mechanisms measured on a trained model (Section 6, Fig 10).

`gradient_rank`: singular values of the contrastive loss's gradient with respect to r and to
h, the input of the last residual block (docs/explain.md).
"""

from dimcollapse.explain.gradient_rank import (
    DEFAULT_RTOL,
    GradientSpectra,
    gradient_spectra,
    numerical_rank,
    singular_values,
)

__all__ = ["DEFAULT_RTOL", "GradientSpectra", "gradient_spectra", "numerical_rank",
           "singular_values"]
