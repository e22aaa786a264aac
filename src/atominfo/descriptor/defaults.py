"""Default descriptor parameters: k nearest neighbours and cutoff radius (Å)."""

DEFAULT_K = 32
DEFAULT_CUTOFF = 5.0  # Å
