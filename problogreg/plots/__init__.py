"""Figures for model comparison studies; every function returns a matplotlib Figure.

ArviZ figures (forest, comparison, trace, rank) go through arviz-plots and are
returned as the matplotlib Figure behind its PlotCollection.
"""

from .predictive import (
    calibration,
    coefficient_forest,
    comparison,
    decision_regions,
    loss_surface,
    posterior_overlay,
    ppc,
    rank,
    trace,
)

__all__ = [
    "calibration",
    "coefficient_forest",
    "comparison",
    "decision_regions",
    "loss_surface",
    "posterior_overlay",
    "ppc",
    "rank",
    "trace",
]
