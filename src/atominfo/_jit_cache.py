"""Where numba keeps the compiled kernels, also when the install is read-only.

numba caches beside the source, else in the user's cache directory; with
neither writable (a read-only install and home, as on some clusters) its
cached functions fail at import. Then, and only then, point it at a private
directory under the system's temporary directory. NUMBA_CACHE_DIR, when the
user sets it, always wins.
"""

from __future__ import annotations

import os
import sys
import tempfile


def _writable(path: str) -> bool:
    while path and not os.path.exists(path):  # a missing directory can be created
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.access(path, os.W_OK)


def ensure_cache_dir() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    package = os.path.dirname(os.path.abspath(__file__))
    user = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "numba")
    if _writable(package) or _writable(user):
        return
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    fallback = os.path.join(tempfile.gettempdir(), f"atominfo-numba-cache-{uid}")
    os.environ["NUMBA_CACHE_DIR"] = fallback
    if "numba" in sys.modules:  # numba read its configuration already
        sys.modules["numba"].config.CACHE_DIR = fallback
