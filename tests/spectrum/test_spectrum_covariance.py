"""covariance_spectrum (Eqn 1, in memory) against the explicit-loop reference."""

import numpy as np
import pytest
import torch

from dimcollapse.spectrum import covariance_matrix, covariance_spectrum


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("ddof", [0, 1])
def test_matches_loop_reference(ref, make_embeddings, normalize, center, ddof):
    rng = np.random.default_rng(1)
    z = make_embeddings(rng, 60, 7, offset=2.0)
    ours = covariance_spectrum(z, normalize=normalize, center=center, ddof=ddof)
    want = ref.spectrum(z, normalize=normalize, center=center, ddof=ddof)
    assert ours.dtype == np.float64
    assert np.all(np.diff(ours) <= 0), "descending"
    np.testing.assert_allclose(ours, np.maximum(want, 0), rtol=0, atol=1e-13 * want[0])
    np.testing.assert_allclose(covariance_matrix(z, normalize=normalize, center=center,
                                                 ddof=ddof),
                               ref.covariance(z, normalize=normalize, center=center, ddof=ddof),
                               rtol=0, atol=1e-14 * want[0])


def test_choices_change_the_result(make_embeddings):
    rng = np.random.default_rng(2)
    z = make_embeddings(rng, 50, 6, offset=3.0)
    a = covariance_spectrum(z, normalize=False)
    assert not np.allclose(a, covariance_spectrum(z, normalize=True))
    assert not np.allclose(a, covariance_spectrum(z, normalize=False, center=False))
    np.testing.assert_allclose(covariance_spectrum(z, normalize=False, ddof=1), a * 50 / 49,
                               rtol=1e-12)


def test_torch_and_float32_inputs_match_numpy(make_embeddings):
    rng = np.random.default_rng(3)
    z = make_embeddings(rng, 40, 5, dtype=np.float32)
    want = covariance_spectrum(z.astype(np.float64), normalize=True)
    np.testing.assert_allclose(covariance_spectrum(torch.from_numpy(z), normalize=True), want,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(covariance_spectrum(z, normalize=True), want, rtol=1e-12,
                               atol=1e-15)


def test_rank_deficient_data_has_zero_eigenvalues():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 10))  # rank 3 in 10-d
    ev = covariance_spectrum(z, normalize=False)
    assert np.all(ev >= 0)
    assert ev[2] > 1e-3 * ev[0]
    assert np.all(ev[3:] < 1e-12 * ev[0])


def test_zero_row_stays_zero_when_normalising():
    z = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    # F.normalize semantics: the zero row stays 0 instead of becoming NaN
    ev = covariance_spectrum(z, normalize=True)
    assert np.all(np.isfinite(ev))
    x = np.array([[0.0, 0.0], [0.6, 0.8], [1.0, 0.0]])
    np.testing.assert_allclose(ev, covariance_spectrum(x, normalize=False), rtol=1e-12)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        covariance_spectrum(np.zeros(5), normalize=False)
    with pytest.raises(ValueError):
        covariance_spectrum(np.zeros((1, 5)), normalize=False, ddof=1)
