"""Small torch linear-algebra helpers shared by the toy nets and the projector arms.

Upstream of `toy/` and `models/`: imports torch only.
"""

from __future__ import annotations

import torch


def haar_orthogonal(dim: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random dim x dim orthogonal matrix (float64): QR of a Gaussian matrix with the
    signs of R's diagonal moved into Q (Mezzadri 2007), so the distribution is uniform.

    Shape: () -> (dim, dim). Draws dim * dim normals from `generator` (CPU), nothing else.
    """
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)
