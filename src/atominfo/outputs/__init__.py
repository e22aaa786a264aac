"""Outputs: atomic writes, the resumable per-frame stream, and figures."""
