"""Range ends, actionable messages, reproducible plots and whole help descriptions.

Values inside the declared ranges (`atominfo.params`) give a finite answer or
one clean error line, never an internal error; messages about learning-curve
sizes say which option to pass; a saved plot has the same bytes on every run;
every command's --help description is a whole sentence.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from atominfo import params
from atominfo.cli import COMMANDS, command_parser, main
from atominfo.errors import InputError
from atominfo.structures.frameset import FrameSet
from atominfo.workflows.curves import learning_curve, subset_sizes
from atominfo.workflows.curves_asymptote import fit_asymptote
from atominfo.workflows.labelling import deduplicate
from atominfo.workflows.nucleation import critical_nucleus

DATA = Path(__file__).parent / "data"
HOT = str(DATA / "cu_hot_32.extxyz")
FCC = str(DATA / "cu_fcc_108.extxyz")
TINY = 5e-324  # the smallest positive float: just inside an open 0
HUGE = sys.float_info.max
CU = (0.177, 1323.0, 11.99, 420.0, 12.893)  # the paper's values, the `cnt` defaults


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("atominfo: error: "), err
    assert "internal error" not in err[0] and "Traceback" not in err[0]
    return err[0]


# -- classical nucleation theory over its whole declared range ------------------------


@pytest.mark.parametrize(
    "option, value, quantity, culprit",
    [
        ("--undercooling", "1e-300", "critical size n* overflows", "undercooling 1e-300 K"),
        ("--latent-heat", "1e-300", "critical size n* overflows", "latent heat 1e-300 kJ/mol"),
        ("--undercooling", repr(TINY), "critical radius r* overflows", "undercooling"),
        ("--gamma", repr(TINY), "critical radius r* underflows", "gamma"),
    ],
)
def test_cnt_refuses_an_unrepresentable_nucleus_by_name(option, value, quantity, culprit, capsys):
    assert main(["cnt", option, value]) == 2
    line = one_error_line(capsys)
    assert quantity in line and f"at {culprit}" in line and "float64" in line
    assert "use physical values (Cu:" in line


def test_cnt_volume_range_is_physical(capsys):
    """A volume per atom below 0.1 Å^3 is refused by argparse, before any work."""
    assert main(["cnt", "--volume", "1e-300"]) == 2
    assert "--volume must be a finite number >= 0.1" in one_error_line(capsys)
    assert main(["cnt", "--volume", "0.1", "--json"]) == 0


def test_critical_nucleus_is_finite_at_every_range_end():
    """Each input at each end of its range (others at the Cu values): finite or InputError."""
    names = ["gamma", "melting_temperature", "latent_heat", "undercooling", "atomic_volume"]
    answered = 0
    for i, name in enumerate(names):
        c = params.CONSTRAINTS[name]
        low = c.low if c.closed in ("both", "left") else math.nextafter(c.low, math.inf)
        for value in (low, c.high):
            args = list(CU)
            args[i] = value
            try:
                result = critical_nucleus(*args)
            except InputError as exc:
                assert "float64" in str(exc) or "below the melting temperature" in str(exc)
                continue
            answered += 1
            values = (result.r_star, result.n_star, result.latent_heat_per_volume)
            assert all(math.isfinite(v) and v > 0 for v in values), (name, value)
    assert answered >= 5


def test_critical_nucleus_keeps_its_formula():
    r = critical_nucleus(*CU)
    v = CU[4] * 1e-30
    per_volume = CU[2] * 1e3 / (6.02214076e23 * v)
    r_m = 2 * CU[0] * CU[1] / (per_volume * CU[3])
    assert r.r_star == pytest.approx(r_m * 1e10, rel=1e-13)
    assert r.n_star == pytest.approx(4 / 3 * np.pi * r_m**3 / v, rel=1e-13)
    assert r.latent_heat_per_volume == pytest.approx(per_volume, rel=1e-13)


# -- extract --dedupe at the ends of --duplicate-distance -----------------------------


@pytest.mark.parametrize("distance, picks", [(0.0, 4), (HUGE, 1)])
def test_duplicate_distance_ends(distance, picks):
    """0: the pure dH criterion; the largest float: every candidate duplicates the first pick."""
    Y = np.arange(8.0).reshape(4, 2)
    d = deduplicate(Y, np.full(4, 5.0), 0.015, duplicate_distance=distance)
    assert len(d.picks) == picks
    assert d.duplicates == 4 - picks


def test_extract_dedupe_with_the_largest_duplicate_distance(tmp_path, capsys):
    out = tmp_path / "cand.extxyz"
    argv = ["extract", HOT, "--ref", FCC, "-o", str(out), "--dedupe", "-q"]
    assert main(argv + ["--duplicate-distance", repr(HUGE)]) == 0
    assert "deduplicated to 1 " in capsys.readouterr().out
    assert out.exists()


# -- learning-curve sizes: messages that say what to pass ------------------------------


def test_subset_sizes_always_hold_the_full_size():
    assert list(subset_sizes(7, 1)) == [7]
    for n in (2, 3, 12):
        sizes = subset_sizes(50, n)
        assert sizes[0] == 1 and sizes[-1] == 50 and len(sizes) == n


@pytest.mark.slow
def test_report_with_one_size_succeeds_and_says_how_to_fit(tmp_path, capsys):
    """It used to fail with 'size 2 was not sampled'."""
    out = tmp_path / "report.html"
    assert main(["report", HOT, FCC, "-o", str(out), "--sizes", "1", "--seeds", "1"]) == 0
    text = capsys.readouterr().out
    # one size: the class cannot be tested, and the line says what to sample
    assert "learning curve not determined: no size besides the full one" in text
    assert "sample more sizes" in text
    assert out.exists()


def test_curve_with_too_few_sizes_names_the_option(capsys):
    # At a tiny bandwidth every environment is distinct: the curve still rises (ln N).
    argv = ["curve", HOT, FCC, "--by", "environments", "--sizes", "6", "--seeds", "2", "-q"]
    assert main(argv + ["-b", "1e-4"]) == 0
    out = capsys.readouterr().out
    assert "still rising" in out
    assert "needs at least 9 sizes, got 6: pass --sizes 9 or more (n_sizes=9 in Python)" in out


def test_learning_curve_fit_messages():
    # Distinct environments (h = 1e-3): H = ln N still rises, so a fit is attempted.
    X = np.random.default_rng(0).normal(size=(40, 3))
    data = FrameSet(X, np.arange(41), ["<memory>"] * 40, list(range(40)))
    curve = learning_curve(data, 1e-3, n_sizes=4, n_seeds=2, n_boot=0)
    assert curve.status == "still rising"
    assert curve.fit is None and "pass --sizes 9 or more" in curve.fit_reason
    curve = learning_curve(data, 1e-3, sizes=[1, 5, 40], n_seeds=2, n_boot=0)
    assert curve.fit_reason.endswith("got 3: pass at least 9 distinct sizes")
    with pytest.raises(InputError, match=r"size 7 was not sampled .*at=\[7\] \(--at 7"):
        curve.entropy_at(7)
    # counted before the ends are dropped: two sizes are two, not six
    with pytest.raises(InputError, match="needs at least 9 sizes .*got 2$"):
        fit_asymptote([1, 2], [0.0, 0.5])


# -- plots: the same bytes on every run -------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_saved_plot_is_byte_reproducible(suffix, tmp_path, monkeypatch):
    from atominfo.outputs import plots

    def draw_and_save(path, day):
        # the clock matplotlib would date the file by, a day apart between the saves
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(86400 * day))
        ax = plots.new_figure(figsize=(3, 2))[1]
        ax.plot([1, 2, 3], [1, 4, 9], label="H")
        ax.legend()
        plots.save_figure(ax.figure, path)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert draw_and_save(tmp_path / f"a{suffix}", 1) == draw_and_save(tmp_path / f"b{suffix}", 2)


def test_command_plot_is_byte_reproducible(tmp_path):
    """Two runs of a command writing an SVG plot write the same bytes."""
    digests = []
    for name in ("one.svg", "two.svg"):
        path = tmp_path / name
        argv = ["curve", HOT, FCC, "--sizes", "2", "--seeds", "1", "-q", "--plot", str(path)]
        assert main(argv) == 0
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


# -- --help descriptions ---------------------------------------------------------------


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_description_is_a_whole_sentence(command):
    parser, _ = command_parser(command)
    description = parser.description
    assert description.endswith("."), f"{command}: {description!r}"
    assert "\n" not in description and "  " not in description
