r"""Gaussian priors: from the user's arguments to per-parameter precisions.

The prior is independent Normal(0, s_j) on every parameter. A flat prior is
precision 0, so one vector of precisions :math:`\lambda_j = 1/s_j^2` describes
MAP (all finite), MLE (all zero) and anything between. The penalty added to the
negative log-likelihood is :math:`\tfrac12 \sum_j \lambda_j \theta_j^2`, which
for ``prior_scale = sqrt(C)`` is scikit-learn's L2 penalty
:math:`\tfrac{1}{2C}\lVert w \rVert^2`.

With ``autoscale=True`` coefficient j gets :math:`s_j = s / \mathrm{sd}(x_j)`
(rstanarm's convention), so the default prior means the same thing whatever the
units of :math:`x_j`; the sd is the sample-weighted population sd, and a
constant column keeps the unscaled ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .numerics import weighted_mean_variance


@dataclass(frozen=True)
class ResolvedPrior:
    """Prior scales after resolution.

    Attributes
    ----------
    coef_scale : ndarray of shape (n_features,)
        Standard deviation of each coefficient's prior; ``inf`` means flat.
    intercept_scale : float
        Standard deviation of each intercept's prior; ``inf`` means flat.
    jeffreys : bool
        The Jeffreys prior :math:`|I(\\theta)|^{1/2}` instead of the Gaussian one
        (the scales are then ``inf``); see :mod:`problogreg.core.jeffreys`.
    """

    coef_scale: np.ndarray
    intercept_scale: float
    jeffreys: bool = False

    @property
    def coef_is_proper(self) -> bool:
        return bool(np.all(np.isfinite(self.coef_scale)))

    @property
    def intercept_is_proper(self) -> bool:
        return bool(np.isfinite(self.intercept_scale))

    @property
    def is_proper(self) -> bool:
        """A normalised prior (the Jeffreys prior's normalising constant is unknown)."""
        return self.coef_is_proper and self.intercept_is_proper and not self.jeffreys


def _check_scale(value, name: str, shape) -> np.ndarray:
    scale = np.asarray(value, dtype=np.float64)
    if scale.ndim == 0:
        scale = np.full(shape, float(scale))
    elif scale.shape != shape:
        raise ValueError(
            f"{name} has shape {scale.shape}, but the data need a scalar or shape {shape}."
        )
    if np.any(np.isnan(scale)) or np.any(scale <= 0):
        raise ValueError(
            f"{name} must be positive (a prior standard deviation); got {value!r}. "
            "Use None (or inf) for a flat prior."
        )
    return scale


def resolve_prior(
    prior_scale,
    intercept_prior_scale,
    autoscale: bool,
    X: np.ndarray,
    sample_weight: np.ndarray,
    kind: str = "normal",
    column_sd: np.ndarray | None = None,
) -> ResolvedPrior:
    """Turn the estimator's prior arguments into per-parameter scales.

    Parameters
    ----------
    kind : {"normal", "jeffreys"}
        "jeffreys": the Jeffreys prior on every parameter; the Gaussian scales
        are not used.
    prior_scale : float, array of shape (n_features,) or None
        Coefficient prior sd; None is flat (MLE); ``inf`` entries are flat too.
    intercept_prior_scale : float or None
    autoscale : bool
        Divide coefficient j's scale by the weighted sd of column j.
    X, sample_weight : training data (used only for autoscale).
    column_sd : ndarray of shape (n_features,), optional
        The weighted population sd of each column when already known (data in
        blocks get it from their one validation pass); otherwise computed from X.
    """
    n_features = X.shape[1]
    if kind == "jeffreys":
        return ResolvedPrior(np.full(n_features, np.inf), np.inf, jeffreys=True)
    if prior_scale is None:
        coef_scale = np.full(n_features, np.inf)
    else:
        coef_scale = _check_scale(prior_scale, "prior_scale", (n_features,))
        if autoscale:
            coef_scale = coef_scale / feature_scale(X, sample_weight, column_sd)
    if intercept_prior_scale is None:
        intercept_scale = np.inf
    else:
        intercept_scale = float(_check_scale(intercept_prior_scale, "intercept_prior_scale", ()))
    return ResolvedPrior(coef_scale=coef_scale, intercept_scale=intercept_scale)


def feature_scale(X: np.ndarray, sample_weight: np.ndarray, sd=None) -> np.ndarray:
    """Weighted population standard deviation of each column (1 for constant columns);
    ``sd`` when given (already computed)."""
    if sd is None:
        sd = np.sqrt(weighted_mean_variance(X, sample_weight)[1])
    return np.where(sd > 0, sd, 1.0)


def log_normal_density(theta: np.ndarray, scale: np.ndarray) -> np.ndarray | float:
    r"""Normalised :math:`\sum_j \log \mathcal N(\theta_j; 0, s_j)` over proper entries.

    ``theta`` is one vector (n,) or a stack (..., n); the sum runs over the last
    axis. Entries with infinite scale (flat prior) contribute nothing; callers
    that need a normalised density must reject flat priors themselves.
    """
    proper = np.isfinite(scale)
    t, s = theta[..., proper], scale[proper]
    terms = -0.5 * np.log(2 * np.pi) - np.log(s) - 0.5 * (t / s) ** 2
    total = np.sum(terms, axis=-1)
    return float(total) if np.ndim(total) == 0 else total
