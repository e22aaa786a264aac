"""Moved to `atominfo.runs.atomic` (kept while the tree is converted)."""

from atominfo.runs.atomic import atomic_output  # noqa: F401
