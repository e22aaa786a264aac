"""numba's cache directory falls back to a private temporary one only when nothing else is writable."""

import importlib

import pytest


@pytest.fixture
def jit_cache(monkeypatch):
    module = importlib.import_module("atominfo._jit_cache")
    # set, then delete: undone, the variable is as it was even where ensure_cache_dir
    # set it (left set, every later `python -m atominfo` compiled into a test's folder)
    monkeypatch.setenv("NUMBA_CACHE_DIR", "")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    return module


def test_user_setting_wins(jit_cache, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere")
    monkeypatch.setattr(jit_cache, "_writable", lambda path: False)
    jit_cache.ensure_cache_dir()
    assert jit_cache.os.environ["NUMBA_CACHE_DIR"] == "/somewhere"


def test_writable_install_keeps_numba_default(jit_cache, monkeypatch):
    monkeypatch.setattr(jit_cache, "_writable", lambda path: True)
    jit_cache.ensure_cache_dir()
    assert "NUMBA_CACHE_DIR" not in jit_cache.os.environ


def test_read_only_install_and_home_fall_back_to_temp(jit_cache, monkeypatch, tmp_path):
    import numba

    monkeypatch.setattr(jit_cache, "_writable", lambda path: False)
    monkeypatch.setattr(jit_cache.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)
    jit_cache.ensure_cache_dir()
    chosen = jit_cache.os.environ["NUMBA_CACHE_DIR"]
    assert chosen.startswith(str(tmp_path)) and numba.config.CACHE_DIR == chosen


def test_missing_directory_under_writable_parent_counts_as_writable(jit_cache, tmp_path):
    assert jit_cache._writable(str(tmp_path / "a" / "b"))
