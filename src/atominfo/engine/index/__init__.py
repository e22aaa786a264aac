"""Reference-set indexes, built once: cluster bounds (exact), faiss neighbours (approximate)."""
