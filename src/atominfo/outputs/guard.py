"""Moved to `atominfo.runs.guard` (kept while the tree is converted)."""

from atominfo.runs.files import WRITE_ERRNOS, hidden_files, hidden_path, write_error  # noqa: F401
from atominfo.runs.guard import *  # noqa: F403
