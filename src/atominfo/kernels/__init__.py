"""Kernel-sum engine: every information quantity is built on `log_kernel_sums`."""

from .cpu import log_kernel_sums

__all__ = ["log_kernel_sums"]
