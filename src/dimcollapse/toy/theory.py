"""The paper's theory as functions: Lemma 2's X, alignment (Theorem 2), Theorem 3's rates.

Shapes: inputs x, x' are (..., B, d); embeddings z = W x are (..., B, d); matrices (..., d, d).

- Lemma 2: X = S0 - S1 with S0 = sum_{i, j!=i} a_ij (x_i - x_j)(x_i - x_j)^T (data) and
  S1 = sum_i (1 - a_ii)(x_i' - x_i)(x_i' - x_i)^T (augmentation); Lemma 1: for z = W x and the
  paper loss (Eqn 2, summed over i), dL/dW = -W X exactly, for any finite batch.
- The official toy loss (summed over i) has the same structure, dL/dW = -W X_off, with the
  symmetric X_off = (1/tau) sum_ij (delta_ij - p_ij)(x1_i x2_j^T + x2_j x1_i^T), p = softmax of
  z1 z2^T / tau by rows (derived here by the chain rule; not in the paper).
- Both X are for the loss summed over the batch; with reduction="mean", dL/dW = -W X / B.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dimcollapse.toy.losses import OFFICIAL_TEMPERATURE, paper_alpha


def _t(m: torch.Tensor) -> torch.Tensor:
    return m.transpose(-2, -1)


def sigma_hat_0(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Weighted data covariance S0 of Lemma 2. (..., B, d), (..., B, B) -> (..., d, d).

    sum_{i,j!=i} a_ij (x_i - x_j)(x_i - x_j)^T = x^T (diag(r + c) - A - A^T) x with A the
    off-diagonal part of alpha and r, c its row and column sums."""
    a = alpha.clone()
    a.diagonal(dim1=-2, dim2=-1).zero_()
    lap = torch.diag_embed(a.sum(-1) + a.sum(-2)) - a - _t(a)
    return _t(x) @ lap @ x


def sigma_hat_1(x: torch.Tensor, xp: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Weighted augmentation covariance S1 of Lemma 2. -> (..., d, d)."""
    delta = xp - x
    w = 1.0 - alpha.diagonal(dim1=-2, dim2=-1)
    return _t(delta) @ (w.unsqueeze(-1) * delta)


def lemma2_x(x: torch.Tensor, xp: torch.Tensor, z: torch.Tensor, zp: torch.Tensor
             ) -> torch.Tensor:
    """X = S0 - S1 (Lemma 2) for the paper loss, alpha taken from the embeddings z, z'."""
    alpha = paper_alpha(z, zp)
    return sigma_hat_0(x, alpha) - sigma_hat_1(x, xp, alpha)


def official_x(x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
               temperature: float = OFFICIAL_TEMPERATURE) -> torch.Tensor:
    """X_off with dL_off/dW = -W X_off for z = W x (see module docstring). -> (..., d, d)."""
    m = -torch.softmax(z1 @ _t(z2) / temperature, dim=-1)
    m.diagonal(dim1=-2, dim2=-1).add_(1.0)  # I - P
    half = _t(x1) @ m @ x2
    return (half + _t(half)) / temperature


# (x, x', z, z') -> X of that loss (Lemma 2 / the official loss's analogue).
X_MATRIX: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
                             torch.Tensor]] = {"paper": lemma2_x, "official": official_x}


def alignment_matrix(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """A = V2^T U1 (Section 5) for W1 = U1 S1 V1^T, W2 = U2 S2 V2^T, singular values
    descending. Signs of singular vectors are arbitrary; use |A|. (..., d, d) x2 -> (..., d, d)."""
    u1 = torch.linalg.svd(w1)[0]
    v2t = torch.linalg.svd(w2)[2]
    return v2t @ u1


def near_equal_blocks(*sv: torch.Tensor, rel_tol: float = 0.05) -> list[list[int]]:
    """Groups of consecutive indices whose singular values are near-equal: k and k+1 share a
    block when, in any of the given descending spectra (d,), s_{k+1} >= (1 - rel_tol) s_k."""
    d = sv[0].shape[-1]
    blocks, cur = [], [0]
    for k in range(d - 1):
        if any(float(s[k + 1]) >= (1.0 - rel_tol) * float(s[k]) for s in sv):
            cur.append(k + 1)
        else:
            blocks.append(cur)
            cur = [k + 1]
    blocks.append(cur)
    return blocks


def diagonal_mass(a: torch.Tensor) -> float:
    """Share of |A|^2 on the diagonal (1 for A = +-I; about 1/d for a random orthogonal A)."""
    a2 = a.double() ** 2
    return float(a2.diagonal().sum() / a2.sum())


def permutation_mass(a: torch.Tensor) -> float:
    """Mean over rows of the largest |A_kj|^2: 1 when A is a signed permutation (aligned up to
    the order of the pairs), about 0.2 for a random 16 x 16 orthogonal A."""
    a2 = a.double() ** 2
    return float((a2.max(dim=-1).values / a2.sum(-1)).mean())


def block_mass(a: torch.Tensor, blocks: list[list[int]]) -> float:
    """Share of |A|^2 inside the diagonal blocks (Theorem 2 with degenerate singular values)."""
    a2 = a.double() ** 2
    inside = sum(float(a2[b][:, b].sum()) for b in blocks)
    return inside / float(a2.sum())


def theorem3_rates(w1: torch.Tensor, w2: torch.Tensor, x: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Theorem 3 for aligned weights (V2 = U1): d sigma1_k/dt = sigma1_k sigma2_k^2 (v1_k^T X v1_k)
    and d sigma2_k/dt = sigma2_k sigma1_k^2 (v1_k^T X v1_k). (d, d) x3 -> ((d,), (d,))."""
    _, s1, v1t = torch.linalg.svd(w1)
    s2 = torch.linalg.svdvals(w2)
    q = (v1t @ x @ _t(v1t)).diagonal()
    return s1 * s2**2 * q, s2 * s1**2 * q


def singular_value_rates(w: torch.Tensor, w_dot: torch.Tensor) -> torch.Tensor:
    """Lemma 4: d sigma_k/dt = u_k^T W_dot v_k for distinct singular values. -> (d,)."""
    u, _, vt = torch.linalg.svd(w)
    return (_t(u) @ w_dot @ _t(vt)).diagonal(dim1=-2, dim2=-1)
