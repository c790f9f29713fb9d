"""Figures for model comparison studies; every function returns a matplotlib Figure.

ArviZ figures (forest, comparison, trace, rank) go through arviz-plots and are
returned as the matplotlib Figure behind its PlotCollection.

One module per kind of figure: ``feature_plane`` (decision regions over two
features), ``loss`` (the objective along one coefficient), ``predictive``
(calibration and the posterior predictive check), ``overlay`` (Laplace marginals
over NUTS draws), ``arviz_figures`` (comparison, forest, trace, rank); ``_axes``
is what they share.
"""

from .arviz_figures import coefficient_forest, comparison, rank, trace
from .feature_plane import decision_regions
from .loss import loss_surface
from .overlay import posterior_overlay
from .predictive import calibration, ppc

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
