"""Structures in: reading frames, validating them, and knowing where each came from."""
