"""dimcollapse.measure / Spectrum against slow references and numpy's eigvalsh, any input dtype."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import dimcollapse
from dimcollapse.errors import UserError
from dimcollapse.report.spectrum_plot import write_spectrum_report
from dimcollapse.spectrum import SpectrumAccumulator
from dimcollapse.spectrum.measure import METRICS, Spectrum


def _numpy_spectrum(x, *, normalize, center=True):
    """eigvalsh of the covariance, straight from Eqn 1 with numpy in float64, descending."""
    x = np.asarray(x, dtype=np.float64)
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    if center:
        x = x - x.mean(axis=0)
    return np.linalg.eigvalsh(x.T @ x / x.shape[0])[::-1]


def _close(got, want, tol=1e-12):
    assert np.abs(np.asarray(got) - np.maximum(want, 0)).max() <= tol * want[0]


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("center", [True, False])
def test_eigenvalues_equal_numpy_eigvalsh_and_the_slow_reference(make_embeddings, ref,
                                                                 normalize, center):
    z = make_embeddings(np.random.default_rng(1), 120, 9, offset=2.0)
    s = dimcollapse.measure(z, normalize=normalize, center=center)
    _close(s.eigenvalues, _numpy_spectrum(z, normalize=normalize, center=center))
    _close(s.eigenvalues, ref.spectrum(z, normalize=normalize, center=center))
    assert s.n == 120 and s.dim == 9 and s.eigenvalues.dtype == np.float64
    assert not s.eigenvalues.flags.writeable


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_torch_input_of_any_float_dtype_equals_the_float64_cast_reference(make_embeddings, dtype):
    z = torch.from_numpy(make_embeddings(np.random.default_rng(2), 200, 16, offset=1.0))
    t = z.to(dtype)
    want = _numpy_spectrum(t.double().numpy(), normalize=True)  # the cast input, in float64
    _close(dimcollapse.measure(t).eigenvalues, want)
    # the cast matters (the reference of the uncast rows differs by far more than rounding)
    if dtype in (torch.float16, torch.bfloat16):
        assert np.abs(_numpy_spectrum(z.numpy(), normalize=True) - want).max() > 1e-9 * want[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensor_equals_the_cpu_reference(make_embeddings):
    z = torch.from_numpy(make_embeddings(np.random.default_rng(3), 300, 24)).float()
    _close(dimcollapse.measure(z.cuda()).eigenvalues, _numpy_spectrum(z.double().numpy(),
                                                                      normalize=True))


def test_metrics_equal_their_slow_references(make_embeddings, ref):
    rng = np.random.default_rng(4)
    z = make_embeddings(rng, 400, 30, offset=1.5, decay=0.15)
    s = dimcollapse.measure(z)
    assert s.rankme == pytest.approx(ref.rankme(z), rel=1e-10)
    alpha, r2 = ref.alpha_req(ref.spectrum(z, normalize=False))
    assert s.alpha_req == pytest.approx(alpha, rel=1e-9)
    assert s.alpha_req_r2 == pytest.approx(r2, rel=1e-9)
    assert s.normalized_std == pytest.approx(ref.normalized_std(z).mean(), rel=1e-10)
    assert set(s.metrics()) == set(METRICS)
    # rank 4 in 10 dims: exactly 6 collapsed dimensions
    low = rng.standard_normal((300, 4)) @ rng.standard_normal((4, 10))
    assert dimcollapse.measure(low).collapsed_dims == 6
    assert dimcollapse.measure(z[:, :10]).collapsed_dims == 0


def test_functions_take_a_matrix_or_a_spectrum(make_embeddings, ref):
    z = make_embeddings(np.random.default_rng(5), 300, 20, offset=1.0, decay=0.4)
    s = dimcollapse.measure(z)
    assert dimcollapse.rankme(z) == pytest.approx(ref.rankme(z), rel=1e-10)
    assert dimcollapse.rankme(s) == s.rankme
    alpha, _ = ref.alpha_req(ref.spectrum(z, normalize=False))
    assert dimcollapse.alpha_req(z).alpha == pytest.approx(alpha, rel=1e-9)
    assert dimcollapse.alpha_req(s).alpha == s.alpha_req
    ev = ref.spectrum(z, normalize=True)
    for threshold in (1e-4, 1e-2, 0.1):
        want = int(np.sum(ev < threshold * ev[0]))
        assert dimcollapse.collapsed_dims(z, threshold=threshold) == want
        assert dimcollapse.collapsed_dims(s, threshold=threshold) == want
    assert dimcollapse.collapsed_dims(z, threshold=0.1) > 0  # the thresholds differ
    np.testing.assert_allclose(dimcollapse.normalized_std(z, per_dim=True),
                               ref.normalized_std(z), rtol=1e-10)
    assert dimcollapse.normalized_std(s) == pytest.approx(ref.normalized_std(z).mean(), rel=1e-10)


def test_to_dict_has_spectrum_json_keys_and_values(make_embeddings, tmp_path):
    z = make_embeddings(np.random.default_rng(6), 100, 8)
    s = dimcollapse.measure(z)
    acc = SpectrumAccumulator(8, normalize=True)
    acc.update(z)
    json_path, _ = write_spectrum_report(acc.summary(), tmp_path, metadata={"x": 1})
    written = json.loads(json_path.read_text())
    del written["metadata"]
    assert list(s.to_dict()) == list(written)
    assert json.loads(json.dumps(s.to_dict())) == written


def test_plot_draws_the_positive_eigenvalues_on_a_log_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(7)
    s = dimcollapse.measure(rng.standard_normal((50, 3)) @ rng.standard_normal((3, 6)),
                            normalize=False)
    fig, ax = plt.subplots()
    assert s.plot(ax) is ax
    line = ax.get_lines()[0]
    positive = s.eigenvalues[s.eigenvalues > 0]
    np.testing.assert_array_equal(line.get_ydata(), positive)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, positive.size + 1))
    assert ax.get_yscale() == "log"
    assert "collapsed" in line.get_label()
    assert any("collapse threshold" in ln.get_label() for ln in ax.get_lines())
    new_ax = s.plot(threshold=False)
    # the spectrum, its exact-zero marks and the numerical floor; no threshold line
    labels = [ln.get_label() for ln in new_ax.get_lines()]
    assert new_ax is not ax and not any("collapse threshold" in lab for lab in labels)
    assert sum("collapsed" in lab for lab in labels) == 1
    plt.close("all")


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 3, 2)), "needs an (N, d) matrix"),
    (np.zeros((1, 3)), "at least 2 rows"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or infinite"),
    (np.array([[1 + 1j, 0], [0, 1]]), "real numbers"),
    (torch.ones(3, 2, dtype=torch.complex64), "real numbers"),
    (torch.tensor([[1.0, float("inf")], [0.0, 1.0]]), "NaN or infinite"),
])
def test_bad_input_names_the_problem(bad, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        dimcollapse.measure(bad)


def test_import_dimcollapse_stays_light_and_all_exports_resolve():
    code = ("import sys, dimcollapse; print('torch' in sys.modules, 'numpy' in sys.modules); "
            "import dimcollapse.spectrum.measure, dimcollapse.monitor; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "False"]
    assert set(dimcollapse.__all__) == {"__version__", *dimcollapse._EXPORTS}
    for name in dimcollapse.__all__:
        assert getattr(dimcollapse, name) is not None
    assert dimcollapse.Spectrum is Spectrum
    with pytest.raises(AttributeError):
        dimcollapse.no_such_thing  # noqa: B018
