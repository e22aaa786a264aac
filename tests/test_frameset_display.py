"""A FrameSet shows itself briefly: repr and HTML per file, tables per frame or environment."""

from __future__ import annotations

import html
import re
import sys

import numpy as np
import pytest
from ase.build import bulk

from atominfo.errors import InputError
from atominfo.structures.frameset import FrameSet, from_descriptors

LONG = "/data/project/runs/2024/very/long/path/to/trajectory_of_the_hot_melt.extxyz"


def frameset(sizes, sources, source_frames=None, *, width=5, with_atoms=False) -> FrameSet:
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    X = np.arange(offsets[-1] * width, dtype=float).reshape(-1, width)
    if source_frames is None:
        source_frames = [sum(s == src for s in sources[:i]) for i, src in enumerate(sources)]
    atoms = [bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 1, n // 4)) for n in sizes]
    return FrameSet(X, offsets, list(sources), list(source_frames), atoms if with_atoms else [])


def test_repr_names_each_file_once_with_its_frames_and_atoms():
    data = frameset([4] * 200 + [8, 8], [LONG] * 200 + ["b.extxyz"] * 2)
    text = repr(data)
    assert text.count(LONG) == 1
    assert "202 frames" in text and "816 atoms" in text and "width 5" in text
    assert f"{LONG} (200 frames)" in text and "b.extxyz (2 frames)" in text
    assert len(text) < 200


def test_repr_of_many_files_is_abbreviated():
    data = frameset([4] * 50, [f"frame_{i}.extxyz" for i in range(50)])
    text = repr(data)
    assert "50 frames" in text and "200 atoms" in text
    assert "frame_0.extxyz (1 frame)" in text and "and 47 more files" in text
    assert "frame_49.extxyz" not in text


def test_repr_keeps_input_order_of_a_file_given_twice():
    data = frameset([4, 4, 4], ["a.xyz", "b.xyz", "a.xyz"], [0, 0, 0])
    assert "a.xyz (1 frame), b.xyz (1 frame), a.xyz (1 frame)" in repr(data)


def test_html_table_has_one_row_per_file():
    data = frameset([4] * 3 + [8], [LONG] * 3 + ["<memory>"])
    page = data._repr_html_()
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in rows]
    assert cells[0] == ["file", "frames", "atoms"]
    assert cells[1:] == [[LONG, "3", "12"], [html.escape("<memory>"), "1", "8"]]
    assert "4 frames, 20 atoms" in page and "<memory>" not in page  # escaped


def test_html_table_of_many_files_is_cut_with_a_count():
    data = frameset([4] * 100, [f"f{i}.xyz" for i in range(100)])
    page = data._repr_html_()
    assert page.count("<tr>") < 30
    assert "80 more files" in page


def test_table_per_frame_and_per_environment():
    data = frameset([4, 8, 4], ["a.xyz", "a.xyz", "b.xyz"], with_atoms=True)
    per_frame = data.table()
    assert list(per_frame) == ["file", "file_frame", "atoms", "first_row", "formula"]
    assert list(per_frame["file"]) == ["a.xyz", "a.xyz", "b.xyz"]
    assert list(per_frame["file_frame"]) == [0, 1, 0]
    assert list(per_frame["atoms"]) == [4, 8, 4]
    assert list(per_frame["first_row"]) == [0, 4, 12]
    assert list(per_frame["formula"]) == ["Cu4", "Cu8", "Cu4"]
    per_env = data.table("environment")
    assert list(per_env) == ["frame", "file", "file_frame", "atom"]
    assert len(per_env["atom"]) == 16
    for row in (0, 5, 15):
        source, file_frame, atom = data.locate(row)
        assert per_env["file"][row] == source
        assert per_env["file_frame"][row] == file_frame
        assert per_env["atom"][row] == atom
    assert "formula" not in frameset([4], ["a.xyz"]).table()  # no structures kept
    with pytest.raises(InputError, match="'frame' or 'environment'"):
        data.table("atom")


def test_to_pandas_rows_are_frames_or_environments():
    pd = pytest.importorskip("pandas")
    data = from_descriptors([np.zeros((3, 5)), np.ones((2, 5))])
    frames = data.to_pandas()
    assert isinstance(frames, pd.DataFrame)
    assert frames.index.name == "frame" and list(frames["atoms"]) == [3, 2]
    envs = data.to_pandas("environment")
    assert len(envs) == data.n_rows and envs.index.name == "row"
    assert list(envs["frame"]) == [0, 0, 0, 1, 1]


def test_to_pandas_without_pandas_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(InputError, match="pip install pandas"):
        from_descriptors([np.zeros((3, 5))]).to_pandas()
