"""Indexes of a reference set, built once: cluster bounds (exact) and faiss neighbours (approximate)."""
