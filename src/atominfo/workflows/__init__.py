"""Workflows built on the information measures: datasets, trajectories, uncertainty, nucleation."""
