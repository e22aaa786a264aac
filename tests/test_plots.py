import numpy as np
import pytest

from atominfo.workflows.curves import learning_curve
from atominfo.errors import InputError
from atominfo.outputs.plots import check_plot_path, plot_compression, plot_learning_curves


def test_plot_formats_from_extension(tmp_path):
    assert check_plot_path("a.PNG") == "png" and check_plot_path("a.pdf") == "pdf"
    with pytest.raises(InputError, match="must end in"):
        check_plot_path(tmp_path / "a.jpg")


def test_learning_curve_and_compression_plots(tmp_path):
    X = np.random.default_rng(0).normal(scale=0.02, size=(300, 4))
    curve = learning_curve(X, 0.015, by="environments", n_seeds=2)
    plot_learning_curves([curve, curve], tmp_path / "c.png", labels=["a", "b"])
    rows = [{"method": m, "structures": n, "entropy": 1.0 + n / 10, "overlap": 0.5}
            for m in ("msc", "random") for n in (5, 10)]
    plot_compression(rows, tmp_path / "p.svg", full_entropy=3.0)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (tmp_path / "p.svg").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "p.svg"]  # no temp files
