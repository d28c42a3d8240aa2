"""Decide with curves: sparsity-vs-metric sweeps and the sweet spot."""

from edgecompress.orchestration.curves.sparsity_sweep import SweepPoint, SweepResult, sweep

__all__ = ["SweepPoint", "SweepResult", "sweep"]
