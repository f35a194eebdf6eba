"""LiDAR (Thilak et al., "LiDAR: Sensing Linear Probing Performance in Joint Embedding SSL
Architectures", ICLR 2024, arXiv:2312.04000): the effective rank of the LDA matrix of the
surrogate task whose classes are the n clean samples and whose members are their q views.

For embeddings e_ij of view j = 1..q of sample i = 1..n (shape (n, q, d)):

    mu_i     = (1/q) sum_j e_ij                     class (sample) means
    mu       = (1/n) sum_i mu_i                     grand mean
    Sigma_b  = 1/(n - 1)     sum_i (mu_i - mu)(mu_i - mu)^T
    Sigma_w  = 1/(n (q - 1)) sum_i sum_j (e_ij - mu_i)(e_ij - mu_i)^T  +  delta I
    Sigma_lidar = Sigma_w^{-1/2} Sigma_b Sigma_w^{-1/2}
    p_k      = lambda_k / sum_l lambda_l + eps      lambda: eigenvalues of Sigma_lidar
    LiDAR    = exp(-sum_k p_k log p_k)

The paper's population form is Sigma_b = E_x[(mu_x - mu)(mu_x - mu)^T] and Sigma_w =
E_x E_{x~|x}[(e - mu_x)(e - mu_x)^T] + delta I; the sample estimates above use the unbiased
denominators n - 1 and n(q - 1), as the public implementations we checked do (the
stable-pretraining LiDAR callback; see docs/spectrum.md for sources). The denominators only
scale Sigma_b and Sigma_w: they change LiDAR only through the size of delta next to Sigma_w.

Constants: delta = 1e-4 (ridge on Sigma_w; the same value in every implementation we found) and
eps = 1e-8 (the stable-pretraining callback's default; eps added to p_k as in RankMe's formula,
which LiDAR's takes). Both are parameters. We could not read the paper's own statement of the
constants through our search tools: docs/spectrum.md says what each value rests on.

`lidar(views)` computes it in memory; `LidarAccumulator` from batches of whole samples (all q
views of a sample in the same batch, which our batched views give) with O(d^2) float64 sums that
merge and all-reduce, so DDP ranks can each measure their shard.
"""

from __future__ import annotations

import numpy as np

from dimcollapse.errors import UserError
from dimcollapse.spectrum.backend import BACKENDS, ArrayOps, ops_for
from dimcollapse.spectrum.covariance import as_numpy, is_tensor
from dimcollapse.spectrum.moments import Moments

LIDAR_DELTA = 1e-4
LIDAR_EPS = 1e-8
# Sigma_b counts as 0 when the sample means spread by less than this fraction of their norm:
# far below any real signal, far above float64 rounding (~1e-16). Without it a collapsed model's
# rounding noise in Sigma_b would be whitened into a meaningless LiDAR (often ~ d).
BETWEEN_ZERO_REL = 1e-12


def _check_views_shape(shape, dim: int | None = None, q: int | None = None) -> None:
    if len(shape) != 3:
        raise UserError(f"LiDAR needs views of shape (n, q, d), got shape {tuple(shape)}: "
                        "stack the q views of each sample on axis 1")
    if shape[1] < 2:
        raise UserError(f"LiDAR needs q >= 2 views per sample, got q={shape[1]}: "
                        "pass at least two augmentations of each sample")
    if dim is not None and shape[2] != dim:
        raise UserError(f"views have d={shape[2]}, the accumulator d={dim}: use one accumulator "
                        "per embedding")
    if q is not None and shape[1] != q:
        raise UserError(f"views have q={shape[1]}, earlier batches q={q}: keep q fixed")


def _check_constants(delta: float, eps: float) -> None:
    if not delta >= 0 or not eps >= 0:
        raise UserError(f"delta and eps must be >= 0, got delta={delta}, eps={eps}")


def lidar_eigenvalues(sigma_b, sigma_w) -> np.ndarray:
    """Eigenvalues of Sigma_w^{-1/2} Sigma_b Sigma_w^{-1/2}, descending, >= 0. (d,d),(d,d) -> (d,).

    sigma_w must already include delta I (symmetric positive definite). Sigma_w^{-1/2} is
    U diag(w^{-1/2}) U^T from the eigendecomposition of Sigma_w; the product is symmetrised
    before the symmetric eigensolver, and rounding negatives are set to 0.
    """
    sb = np.asarray(sigma_b, dtype=np.float64)
    sw = np.asarray(sigma_w, dtype=np.float64)
    w, u = np.linalg.eigh(0.5 * (sw + sw.T))
    if not w.min() > 0:
        raise ValueError("Sigma_w + delta I is singular: use delta > 0 when views coincide")
    inv_sqrt = (u * (1.0 / np.sqrt(w))) @ u.T
    m = inv_sqrt @ sb @ inv_sqrt
    lam = np.linalg.eigvalsh(0.5 * (m + m.T))[::-1]
    return np.maximum(lam, 0.0)


def lidar_from_eigenvalues(eigenvalues, *, eps: float = LIDAR_EPS) -> float:
    """exp(entropy of p_k = lambda_k / sum lambda + eps). (d,) -> scalar.

    Undefined (ValueError) when every eigenvalue is 0: all samples have the same mean view,
    i.e. the embedding separates no sample from another (complete collapse). `lidar` and
    `LidarAccumulator.lidar` also call Sigma_b zero below the rounding floor BETWEEN_ZERO_REL.
    """
    lam = np.maximum(np.asarray(eigenvalues, dtype=np.float64).ravel(), 0.0)
    total = lam.sum()
    if not total > 0:
        raise ValueError("LiDAR is undefined when Sigma_b = 0 (all samples share one mean view)")
    p = lam / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def _check_between(sigma_b: np.ndarray, mean_sq_norm: float) -> None:
    if not np.trace(sigma_b) > BETWEEN_ZERO_REL**2 * mean_sq_norm:
        raise ValueError("LiDAR is undefined when Sigma_b = 0 (all samples share one mean view, "
                         f"to {BETWEEN_ZERO_REL:g} of its norm): the embedding has collapsed")


def lidar_scatter(views, *, delta: float = LIDAR_DELTA) -> tuple[np.ndarray, np.ndarray]:
    """(Sigma_b, Sigma_w + delta I) of views (n, q, d) in float64, two passes (exact means)."""
    x = np.asarray(as_numpy(views), dtype=np.float64)
    _check_views_shape(x.shape)
    _check_constants(delta, 0.0)
    n, q, d = x.shape
    if n < 2:
        raise UserError(f"LiDAR needs n >= 2 samples, got n={n}: pass more samples")
    means = x.mean(axis=1)
    centred_means = means - means.mean(axis=0)
    sigma_b = centred_means.T @ centred_means / (n - 1)
    dev = (x - means[:, None, :]).reshape(n * q, d)
    sigma_w = dev.T @ dev / (n * (q - 1)) + delta * np.eye(d)
    return sigma_b, sigma_w


def lidar(views, *, delta: float = LIDAR_DELTA, eps: float = LIDAR_EPS) -> float:
    """LiDAR of embeddings of n samples x q views (Thilak et al. 2024). (n, q, d) -> scalar.

    views: numpy array or torch tensor, views[i, j] = embedding of view j of sample i.
    In [1, min(d, n - 1)] up to eps; invariant to any invertible linear map of the embeddings
    when delta = 0 (Sigma_lidar is then similar to Sigma_w^{-1} Sigma_b), and to within O(delta
    / eigenvalues of Sigma_w) with the default delta.
    """
    _check_constants(delta, eps)
    sigma_b, sigma_w = lidar_scatter(views, delta=delta)
    means = np.asarray(as_numpy(views), dtype=np.float64).mean(axis=1)
    _check_between(sigma_b, float(np.mean(np.sum(means * means, axis=1))))
    return lidar_from_eigenvalues(lidar_eigenvalues(sigma_b, sigma_w), eps=eps)


class LidarAccumulator:
    """LiDAR from a stream of batches of whole samples, views (b, q, d), O(d^2) memory.

    State (all float64, sum-reducible): `Moments` of the per-sample means mu_i (n, shift, sum,
    Gram: Sigma_b without cancellation) and the plain sum of within-sample scatter
    sum_ij (e_ij - mu_i)(e_ij - mu_i)^T (exact per batch, since a batch holds all q views of its
    samples). Two accumulators merge with `merge_`; `all_reduce_` sums over torch.distributed
    ranks (every rank calls it), after which every rank has the metric of the global set.
    CUDA tensors keep the state on their device; numpy arrays and CPU tensors use numpy.
    backend="torch" forces torch ops on the CPU too (the tests check the CUDA path's arithmetic
    with it on machines without a GPU).
    """

    def __init__(self, dim: int, *, q: int | None = None, delta: float = LIDAR_DELTA,
                 eps: float = LIDAR_EPS, backend: str | None = None):
        if dim < 1:
            raise UserError(f"dim must be >= 1, got {dim}")
        if backend is not None and backend not in BACKENDS:
            raise UserError(f"backend must be None or one of {tuple(BACKENDS)}, got "
                            f"{backend!r}")
        self._backend_request = backend
        if q is not None and q < 2:
            raise UserError(f"q must be >= 2 views per sample, got {q}")
        _check_constants(delta, eps)
        self.dim, self.q, self.delta, self.eps = int(dim), q, float(delta), float(eps)
        self._means: Moments | None = None
        self._within: Moments | None = None

    @property
    def n(self) -> int:
        """Samples (classes) seen."""
        return 0 if self._means is None else self._means.n

    def _init_state(self, ops: ArrayOps) -> None:
        self._means = Moments(self.dim, shifted=True, ops=ops)
        self._within = Moments(self.dim, shifted=False, ops=ops)

    def _state(self) -> tuple[Moments, Moments]:
        """(means, within): set together by the first batch, merge or all_reduce."""
        assert self._means is not None and self._within is not None, "no samples yet"
        return self._means, self._within

    def update(self, views) -> None:
        """Add b whole samples: views (b, q, d), numpy or torch, any real dtype."""
        _check_views_shape(tuple(views.shape), self.dim, self.q)
        if views.shape[0] == 0:
            return
        self.q = int(views.shape[1])
        if self._means is None:
            on_gpu = is_tensor(views) and views.device.type != "cpu"
            backend = self._backend_request or ("torch" if on_gpu else "numpy")
            self._init_state(ops_for(backend, str(views.device) if on_gpu else "cpu"))
        state_means, state_within = self._state()
        ops = state_means.ops
        x = ops.cast(ops.from_batch(views), "float64")
        means = x.mean(1)
        state_means.update(means)
        state_within.update((x - means[:, None, :]).reshape(-1, self.dim))

    def _config(self) -> tuple:
        return (self.dim, self.delta, self.eps)

    def merge_(self, other: LidarAccumulator) -> LidarAccumulator:
        """Add another accumulator's samples (same dim, delta, eps and q) into this one."""
        if other._config() != self._config():
            raise UserError(f"cannot merge LiDAR accumulators with (dim, delta, eps) "
                            f"{other._config()} into {self._config()}: use the same settings")
        if other.n == 0:
            return self
        if self.q is not None and other.q != self.q:
            raise UserError(f"cannot merge q={other.q} views into q={self.q}: keep q fixed")
        other_means, other_within = other._state()
        if self._means is None:
            self._init_state(other_means.ops)
        self.q = other.q
        state_means, state_within = self._state()
        state_means.merge_(other_means)
        state_within.merge_(other_within)
        return self

    def all_reduce_(self) -> LidarAccumulator:
        """Sum the state over torch.distributed ranks in place (no-op without a process group).

        Every rank must call it and have seen the same q; a rank with no samples contributes
        zeros (it needs q given at construction then, so that q agrees).
        """
        if self._means is None:
            self._init_state(ops_for("numpy", "cpu"))
        state_means, state_within = self._state()
        state_means.all_reduce_()
        state_within.all_reduce_()
        return self

    def scatter(self) -> tuple[np.ndarray, np.ndarray]:
        """(Sigma_b, Sigma_w + delta I) over the samples seen, float64 numpy. Shapes: (d, d)."""
        if self.n < 2 or self.q is None:
            raise ValueError(f"LiDAR needs at least 2 samples of known q, have {self.n}")
        state_means, state_within = self._state()
        sigma_b = state_means.scatter(center=True) / (self.n - 1)
        sigma_w = state_within.scatter(center=False) / (self.n * (self.q - 1))
        return sigma_b, sigma_w + self.delta * np.eye(self.dim)

    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of Sigma_lidar, descending, >= 0. Shape: (d,)."""
        return lidar_eigenvalues(*self.scatter())

    def lidar(self) -> float:
        """LiDAR over all samples seen (the same number `lidar` gives on them at once)."""
        sigma_b, sigma_w = self.scatter()
        state_means, _ = self._state()  # scatter() checked that there are samples
        _check_between(sigma_b, float(np.trace(state_means.scatter(center=False))) / self.n)
        return lidar_from_eigenvalues(lidar_eigenvalues(sigma_b, sigma_w), eps=self.eps)
