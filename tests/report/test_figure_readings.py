"""Every reading checkable from the figure: named axes, a legend that matches its lines,
distinct lines, the collapse threshold and the numerical floor labelled, exact zeros marked,
integer ticks on index axes, one colour bar per heatmap, titles that do not collide; and each
figure redrawn from its JSON alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from dimcollapse.figures import numerical_floor, pyplot
from dimcollapse.report.spectrum_plot import spectrum_figure, write_spectrum_report
from dimcollapse.toy import figures as toyfig


def _legend(ax):
    leg = ax.get_legend()
    assert leg is not None, "no legend"
    return {t.get_text(): h for t, h in zip(leg.get_texts(), leg.legend_handles, strict=True)}


def _entry(ax, word):
    hits = [(t, h) for t, h in _legend(ax).items() if word in t]
    assert hits, f"no legend entry with {word!r}: {list(_legend(ax))}"
    return hits[0]


def _close(fig):
    pyplot().close(fig)


def test_spectrum_axes_threshold_floor_and_zeros():
    ev = np.concatenate([np.logspace(0, -6, 60), np.zeros(4)])
    fig = spectrum_figure({"run": ev}, threshold=1e-4, precision="float32")
    ax = fig.axes[0]
    assert "eigenvalue" in ax.get_ylabel() and "index $k$" in ax.get_xlabel()
    assert "singular value rank" not in ax.get_xlabel()
    text, handle = _entry(ax, "collapse threshold")
    thr = [ln for ln in ax.get_lines() if ln.get_label() == text][0]
    assert thr.get_ydata()[0] == pytest.approx(1e-4)  # 1e-4 x sigma_1 (= 1)
    assert to_rgba(handle.get_color()) == to_rgba(thr.get_color())  # swatch = drawn line
    text, _ = _entry(ax, "numerical floor of float32")
    floor = [ln for ln in ax.get_lines() if ln.get_label() == text][0]
    assert floor.get_ydata()[0] == pytest.approx(numerical_floor(1.0, 64, "float32"))
    zeros = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(zeros) == 1 and list(zeros[0].get_xdata()) == [61, 62, 63, 64]
    assert "4 exact zeros" in _entry(ax, "run")[0] and "60 of 64" not in _entry(ax, "run")[0]
    _close(fig)


def test_spectrum_overlay_each_curve_its_own_threshold_and_style():
    curves = {f"arm {i}": np.logspace(0, -3 - 0.1 * i, 32) * (i + 1) for i in range(12)}
    fig = spectrum_figure(curves)
    ax = fig.axes[0]
    drawn = [ln for ln in ax.get_lines() if ln.get_label().startswith("arm")]
    styles = {(to_rgba(ln.get_color()), ln.get_linestyle()) for ln in drawn}
    assert len(styles) == 12
    _entry(ax, "dotted, in each curve's colour: its collapse threshold 0.0001")
    dotted = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":" and len(ln.get_xdata())]
    dotted = [ln for ln in dotted if ln not in drawn]
    assert len(dotted) == 12
    for i, curve in enumerate(drawn):  # each threshold in its own curve's colour, at its height
        line = dotted[i]
        assert line.get_ydata()[0] == pytest.approx(1e-4 * (i + 1))
        assert to_rgba(line.get_color()) == to_rgba(curve.get_color())
    few = spectrum_figure({k: curves[k] for k in list(curves)[:3]})
    for i in range(3):
        text, handle = _entry(few.axes[0], f"threshold 0.0001$\\,\\sigma_1$ of arm {i}")
        line = [ln for ln in few.axes[0].get_lines() if ln.get_label() == text][0]
        assert to_rgba(handle.get_color()) == to_rgba(line.get_color())
    _close(few)
    _entry(ax, "numerical floor of float64")
    _close(fig)


def test_spectrum_png_redraws_from_json(tmp_path):
    from dimcollapse.report.spectrum_plot import replot_spectrum_folder
    from dimcollapse.spectrum import SpectrumAccumulator

    acc = SpectrumAccumulator(8, normalize=False)
    acc.update(np.random.default_rng(0).standard_normal((50, 8)) * np.exp(-np.arange(8)))
    _, png = write_spectrum_report(acc.summary(), tmp_path / "s", title="t")
    first = png.read_bytes()
    png.unlink()
    assert replot_spectrum_folder(tmp_path / "s").read_bytes() == first


@pytest.fixture(scope="module")
def toy_results():
    from dimcollapse.toy.depth import DepthConfig, run_depth
    from dimcollapse.toy.implicit_reg import ImplicitRegConfig, run_implicit_reg
    from dimcollapse.toy.strong_aug import StrongAugConfig, run_strong_aug

    def roundtrip(res):
        return json.loads(json.dumps(res))

    return {"strong": roundtrip(run_strong_aug(StrongAugConfig(k_values=(0.5, 2.0), steps=200),
                                               progress=False)),
            "implicit": roundtrip(run_implicit_reg(ImplicitRegConfig(steps=300),
                                                   progress=False)),
            "depth": roundtrip(run_depth(DepthConfig(steps=200), progress=False))}


def _titles_apart(fig):
    fig.canvas.draw()
    boxes = [ax.title.get_window_extent() for ax in fig.axes if ax.get_title()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), "two panel titles collide"


def test_trajectories_distinct_lines_legend_and_gap_panel(toy_results):
    res = toy_results["implicit"]
    fig = toyfig.trajectories_figure(res)
    a, d = fig.axes[0], fig.axes[3]
    lines = [ln for ln in a.get_lines() if ln.get_label().startswith("k = ")]
    assert len(lines) == 16
    assert len({(to_rgba(ln.get_color()), ln.get_linestyle()) for ln in lines}) == 16
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [f"k = {k}" for k in
                                                                   range(1, 17)]
    assert "W1" in a.get_ylabel() and "log10" in a.get_ylabel()
    text, _ = _entry(d, "collapse criterion: 5 decades")
    crit = [ln for ln in d.get_lines() if ln.get_label() == text][0]
    assert crit.get_ydata()[0] == -5
    assert f"{res['collapsed_end']} at step {res['steps'][-1]}" in _entry(d, "below it")[0]
    for ax in fig.axes[:3]:
        _entry(ax, "numerical floor")
    _titles_apart(fig)
    _close(fig)


def test_depth_zeros_threshold_and_floor(toy_results):
    res = toy_results["depth"]
    res["runs"][0]["embedding_spectrum"][-2:] = [0.0, 0.0]  # exact zeros, as a dead ReLU gives
    fig = toyfig.depth_figure(res)
    for ax in fig.axes:
        text, _ = _entry(ax, "collapse threshold")
        thr = [ln for ln in ax.get_lines() if ln.get_label() == text][0]
        assert thr.get_ydata()[0] == pytest.approx(np.log10(res["config"]["rel_threshold"]))
        _entry(ax, "numerical floor of float32")
        assert all(float(t).is_integer() for t in ax.get_xticks())
    zeros = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "x"]
    assert [list(z.get_xdata()) for z in zeros] == [[15, 16]]
    assert "2 exact zeros" in _entry(fig.axes[0], "exact zeros")[0]
    _titles_apart(fig)
    _close(fig)


def test_alignment_integer_ticks_and_a_colour_bar_per_heatmap(toy_results):
    fig = toyfig.alignment_figure(toy_results["implicit"])
    heatmaps = [ax for ax in fig.axes if ax.images]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(heatmaps) == 2 and len(bars) == 2
    for ax in heatmaps:
        fig.canvas.draw()
        assert all(float(t).is_integer() for t in ax.get_xticks())
        assert all(float(t).is_integer() for t in ax.get_yticks())
    leg = fig.axes[2].get_legend() or [ax for ax in fig.axes if ax.get_legend()][-1].get_legend()
    assert "within 10%" in leg.get_title().get_text()
    _titles_apart(fig)
    _close(fig)


def test_strong_aug_both_panels_have_legends(toy_results):
    fig = toyfig.strong_aug_figure(toy_results["strong"])
    ax1, ax2 = fig.axes
    assert len(_legend(ax2)) == 4  # 2 k values x (largest half, smallest half)
    assert "index i" in ax1.get_xlabel()
    _entry(ax1, "numerical floor")
    _titles_apart(fig)
    _close(fig)


def test_toy_replot_from_json_only(tmp_path, toy_results, monkeypatch):
    from dimcollapse.cli import main
    from dimcollapse.runinfo import write_json
    from dimcollapse.toy import strong_aug as sa

    write_json(tmp_path / "strong_aug.json", toy_results["strong"])
    monkeypatch.setattr(sa, "run_strong_aug", lambda *a, **k: pytest.fail("trained"))
    assert main(["toy", "strong-aug", "--replot", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "strong_aug.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["toy", "depth", "--replot", "--out", str(tmp_path / "none")]) == 2


def test_reproduce_replot_redraws_every_figure_from_json(tmp_path):
    from dimcollapse.cli import main
    from dimcollapse.report.spectrum_plot import write_spectrum_report
    from dimcollapse.runinfo import write_json
    from dimcollapse.spectrum import SpectrumAccumulator

    rng = np.random.default_rng(1)
    rows = []
    for key, label in (("mlp", "SimCLR, 2-layer projector"), ("none", "SimCLR, no projector")):
        for space, dim in (("embedding", 16), ("representation", 32)):
            acc = SpectrumAccumulator(dim, normalize=True)
            acc.update(rng.standard_normal((200, dim)) * np.exp(-0.3 * np.arange(dim)))
            write_spectrum_report(acc.summary(), tmp_path / f"runs/{key}/seed0/spectrum_{space}")
        rows.append({"key": key, "label": label, "projector": key, "d0": None, "top1": None,
                     "paper_top1": None, "per_seed": [{"seed": 0, "run_dir": f"runs/{key}/seed0",
                                                      "collapsed_dims_z": 0}]})
    write_json(tmp_path / "results.json", {"arms": rows})
    for png in tmp_path.glob("runs/*/seed0/*/spectrum.png"):
        png.unlink()
    assert main(["reproduce", "table1", "--out", str(tmp_path), "--replot"]) == 0
    assert len(list(tmp_path.glob("runs/*/seed0/*/spectrum.png"))) == 4
    assert (tmp_path / "fig7b_representation_spectra.png").is_file()
    assert (tmp_path / "fig2_embedding_spectrum_mlp.png").is_file()


def test_demo_replot_redraws_the_toy_figures_and_the_report(tmp_path, toy_results):
    from dimcollapse.cli import main
    from dimcollapse.runinfo import write_json

    for name, key in (("strong_aug", "strong"), ("implicit_reg", "implicit"),
                      ("depth", "depth")):
        write_json(tmp_path / "toy" / f"{name}.json", toy_results[key])
    assert main(["demo", "--replot", "--out", str(tmp_path)]) == 0
    for png in ("strong_aug", "implicit_reg_alignment", "implicit_reg_trajectories", "depth"):
        assert (tmp_path / "toy" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    assert "gap to the largest" in (tmp_path / "report.md").read_text()
