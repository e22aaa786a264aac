import numpy as np
import pytest
from matplotlib.axes import Axes

from atominfo.errors import InputError
from atominfo.outputs.plots import (
    check_plot_path,
    palette,
    plot_calibration,
    plot_clusters,
    plot_compression,
    plot_generations,
    plot_learning_curves,
    plot_overlap_matrix,
    plot_roc,
    plot_trajectory,
    save_figure,
)
from atominfo.workflows.curves import LearningCurve, learning_curve
from atominfo.workflows.curves_asymptote import asymptote_model
from atominfo.workflows.curves_rise import extrapolation, rise_test
from atominfo.workflows.generations import Generation
from atominfo.workflows.overlap_matrix import OverlapMatrix


def _synthetic_curve(clean, sizes, noise):
    """A LearningCurve from a clean curve plus per-seed noise (n_sizes, 3), environments,
    judged as `learning_curve` judges a sampled one (the full size exact)."""
    entropies = clean[:, None] + noise
    entropies[-1] = clean[-1]
    test = rise_test(sizes, entropies)
    fit, why = extrapolation(
        test, sizes, entropies, max_entropy=float(np.log(sizes[-1])), n_boot=50, seed=0
    )
    return LearningCurve(
        np.asarray(sizes),
        entropies,
        np.tile(sizes[:, None], (1, 3)),
        [0, 1, 2],
        "environments",
        0.015,
        test,
        fit,
        int(sizes[-1]),
        {},
        why,
    )


@pytest.fixture(scope="module")
def saturated_and_rising():
    sizes = np.unique(np.geomspace(10, 5000, 14).round().astype(int))
    noise = np.random.default_rng(0).normal(scale=0.01, size=(len(sizes), 3))
    extrapolated = _synthetic_curve(asymptote_model(sizes, 6.0, 4.0, 0.04), sizes, noise)
    rising = _synthetic_curve(np.log(sizes), sizes, noise)
    assert extrapolated.fit is not None and rising.fit is None
    assert extrapolated.status == rising.status == "still rising"
    return extrapolated, rising


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_path_checks(tmp_path):
    assert check_plot_path("a.PNG") == "png" and check_plot_path(tmp_path / "a.pdf") == "pdf"
    with pytest.raises(InputError, match="must end in"):
        check_plot_path(tmp_path / "a.jpg")
    with pytest.raises(InputError, match="directory does not exist"):
        check_plot_path(tmp_path / "missing" / "a.png")


def test_save_figure_is_atomic_and_checks_format(tmp_path, saturated_and_rising):
    ax = plot_learning_curves([saturated_and_rising[0]])
    save_figure(ax.figure, tmp_path / "c.png")
    save_figure(ax.figure, tmp_path / "c.svg")
    with pytest.raises(InputError, match="must end in"):
        save_figure(ax.figure, tmp_path / "c.gif")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (tmp_path / "c.svg").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "c.svg"]  # no temp files


def test_learning_curve_plot_shows_no_rejected_fit(saturated_and_rising):
    extrapolated, rising = saturated_and_rising
    ax = plot_learning_curves([extrapolated, rising], labels=["crystal", "melt"])
    assert isinstance(ax, Axes)
    texts = _legend_texts(ax)
    assert texts[0].startswith("crystal: still rising (rise per doubling")
    assert f"asymptote a = {extrapolated.asymptote:.2f}" in texts[0]
    assert texts[1].startswith("melt: still rising") and texts[1].endswith(", no asymptote")
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1  # the crystal's asymptote: the melt has none
    # y spans the data (and the drawn asymptote) plus a margin.
    low, high = ax.get_ylim()
    data_high = max(float((c.mean + c.sd).max()) for c in (extrapolated, rising))
    assert data_high <= high < data_high + 0.2 * (data_high - low)
    # the legend sits outside the axes, below them
    legend_box = ax.get_legend().get_window_extent(ax.figure.canvas.get_renderer())
    assert legend_box.y1 <= ax.get_window_extent().y0


def test_learning_curve_plot_on_given_axes_of_a_real_curve():
    from matplotlib.figure import Figure

    X = np.random.default_rng(0).normal(scale=0.02, size=(300, 4))
    curve = learning_curve(X, 0.015, by="environments", n_seeds=2)
    fig = Figure()
    ax = fig.subplots()
    assert plot_learning_curves([curve], ax=ax) is ax
    assert "Learning curve" in ax.get_title() and "h = 0.015" in ax.get_title()
    with pytest.raises(InputError, match="labels"):
        plot_learning_curves([curve], labels=["a", "b"])


def test_palette_is_consistent_and_scales_to_many_groups():
    assert palette(3) == palette(8)[:3]
    many = palette(40)
    assert len(many) == 40 and len(set(many)) == 40


def test_dataset_figures_return_axes():
    matrix = OverlapMatrix(["a", "b"], np.array([[1.0, 0.2], [0.5, 1.0]]), [10, 20], 0.015)
    ax = plot_overlap_matrix(matrix)
    assert isinstance(ax, Axes) and "Overlap" in ax.get_title()
    rows = [
        Generation("1", 4, 100, None, None, 100, 2.0, 1.0),
        Generation("2", 4, 100, 0.3, 0.1, 200, 2.5, 1.2),
    ]
    top, bottom = plot_generations(rows)
    assert top.get_shared_x_axes().joined(top, bottom)
    results = [
        {"method": m, "structures": n, "entropy": 1.0 + n / 10, "overlap": 0.5}
        for m in ("msc", "random")
        for n in (5, 10)
    ]
    left, right = plot_compression(results, full_entropy=3.0)
    assert _legend_texts(right) == ["msc", "random", "full set"]


def test_trajectory_axis_uses_timestep_when_known():
    table = {
        "frame": np.arange(4),
        "novelty": np.array([0.0, 0.1, 0.5, 0.9]),
        "max_dH": np.array([-1.0, 0.2, 1.0, 2.0]),
    }
    top, bottom = plot_trajectory(table)
    assert bottom.get_xlabel() == "frame"
    table["timestep"] = [0, 1000, 2000, 3000]
    top, bottom = plot_trajectory(table)
    assert bottom.get_xlabel() == "MD timestep"
    assert list(bottom.get_lines()[0].get_xdata()) == [0, 1000, 2000, 3000]
    table["timestep"] = [0, None, 2000, 3000]  # not known for every frame: frame numbers
    assert plot_trajectory(table)[1].get_xlabel() == "frame"
    clusters = {
        "frame": np.arange(3),
        "largest": [5, 40, 130],
        "clusters": [3, 2, 1],
        "time": [0.0, 0.5, 1.0],
    }
    top, bottom = plot_clusters(clusters, n_star=122)
    assert bottom.get_xlabel() == "time" and "n* = 122" in _legend_texts(top)[1]


def test_calibration_and_roc_return_axes():
    from atominfo.workflows.uncertainty import running_average

    rng = np.random.default_rng(1)
    dH = rng.normal(size=500)
    errors = np.abs(dH) + rng.random(500)
    curve = running_average(dH, errors, n_bins=5)
    assert isinstance(plot_calibration(dH, errors, curve, "eV"), Axes)
    ax = plot_roc({"dH": ([0, 0.1, 1], [0, 0.8, 1], 0.9)})
    assert _legend_texts(ax)[0] == "dH (AUC 0.900)"
