"""The fixed cost of a frame, cut without changing what is read or refused.

* the cell check is done once per distinct cell (cached by its bytes): a
  cached refusal still names each frame it refuses;
* the extxyz comment values skip number conversions that must fail, with the
  values ASE's rule (int, else float, else the text) gives;
* one file handle serves every frame of a scanned file.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from hypothesis import given, settings
from hypothesis import strategies as st

from atominfo.errors import InputError
from atominfo.structures.fastread.extxyz import comment_info
from atominfo.structures.frames import iter_frames, validate_atoms


@pytest.mark.parametrize("frame", [3, 7])
def test_a_flat_cell_is_refused_naming_each_frame(frame):
    flat = Atoms("Cu", cell=[[3.6, 0, 0], [0, 3.6, 0], [0, 0, 0]], pbc=True)
    with pytest.raises(InputError, match="zero volume") as refused:
        validate_atoms(flat, "md.extxyz", frame)
    assert refused.value.source == "md.extxyz" and refused.value.frame == frame


def test_a_good_cell_after_a_cached_one_with_a_nan_coordinate_is_refused():
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [np.nan, 0, 0]], cell=[3.6] * 3, pbc=True)
    validate_atoms(Atoms("Cu", cell=[3.6] * 3, pbc=True), "a", 0)
    with pytest.raises(InputError, match="NaN") as refused:
        validate_atoms(atoms, "a", 1)
    assert refused.value.atom == 1


def _ase_rule(value: str):
    """ASE's conversion of a comment value: ints, else floats, else the text."""
    import re

    parts = re.findall(r"[^\s,]+", value)
    try:
        try:
            number = np.array(parts, dtype=int)
        except (ValueError, OverflowError):
            number = np.array(parts, dtype=float)
        return number[0] if len(number) == 1 else number
    except (ValueError, OverflowError):
        return value


TOKENS = st.sampled_from(
    [
        "1",
        "-2",
        "3.5",
        ".5",
        "1e3",
        "inf",
        "-Infinity",
        "nan",
        "NaN",
        "x",
        "Cu",
        "e5",
        "in",
        "n2",
        "_1",
        "1_0",
        "0x1",
        "T",
        "1.",
        "99999999999999999999999",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS, min_size=1, max_size=4))
def test_comment_values_convert_as_ase_converts_them(tokens):
    value = " ".join(tokens)
    got = comment_info(f'key="{value}"')["key"]
    expected = _ase_rule(value)
    if isinstance(expected, str):  # words: T/F become booleans, the rest stay text
        assert isinstance(got, (str, bool, list))
    else:
        assert type(got) is type(expected)
        np.testing.assert_array_equal(got, expected)
        assert np.asarray(got).dtype == np.asarray(expected).dtype


@pytest.mark.parametrize("n", [5])
def test_frames_of_a_file_are_read_through_one_handle(tmp_path, monkeypatch, n):
    import builtins

    frame = '1\nLattice="3.6 0 0 0 3.6 0 0 0 3.6" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
    opened: list = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    counts = []
    for frames in (n, 4 * n):  # as many opens for 4 times the frames
        path = tmp_path / f"many{frames}.extxyz"
        path.write_text("".join(frame + f"Cu {0.1 * i} 0 0\n" for i in range(frames)))
        got = list(iter_frames(path))
        assert [f.atoms.positions[0, 0] for f in got] == pytest.approx(
            [0.1 * i for i in range(frames)]
        )
        counts.append(opened.count(str(path)))
    assert counts[0] == counts[1], counts
