"""Moved to `atominfo.runs.stream` (kept while the tree is converted)."""

from atominfo.runs.stream import *  # noqa: F403
from atominfo.runs.stream import (  # noqa: F401
    DHStreamWriter,
    Totals,
    bandwidth_labels,
    extxyz_frame,
    final_path,
    finite_or_none,
    partial_path,
    state_path,
)
from atominfo.runs.checkpoint import fingerprint  # noqa: F401
