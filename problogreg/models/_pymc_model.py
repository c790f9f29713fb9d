r"""The logistic model of :mod:`problogreg.core.objective`, written as a PyMC model.

The PyMC model samples exactly the free coordinates :math:`\phi` of
:class:`~problogreg.core.objective.PosteriorObjective`, in the same order
(intercept block first, then the coefficient rows), so that the Laplace
covariance :math:`H^{-1}` computed there is directly a mass matrix here. The
free variables are *created* in that order too: PyMC 6.4's NUTS mislabels its
draws when its ``vars`` are listed in another order than the model's.

.. math::

    \log p(\phi \mid X, y) = \sum_i s_i \log p(y_i \mid x_i, T\phi)
    + \sum_j \log \mathcal N(\phi_j; 0, \sigma_j) + \text{const},

with :math:`T` the map to the likelihood's intercepts and coefficients (the
identity, or Helmert contrasts for sum-to-zero intercepts) and
:math:`\sigma_j = \infty` meaning a flat prior (``pm.Flat``).

Free variables:

* binary: ``intercept`` () and ``coef`` (feature);
* symmetric multiclass: ``intercept`` (class), or ``intercept_contrast``
  (contrast) with the deterministic ``intercept = Q a`` when the
  intercept prior is flat, and ``coef`` (class, feature);
* reference multiclass: ``intercept_free`` (free_class) and ``coef_free``
  (free_class, feature), with deterministics ``intercept`` and ``coef`` that
  hold zeros for the reference class ``classes[0]``.

The data enter as ``pm.Data`` containers (shared variables), so the compiled
log-density depends only on the model's structure and is reused from the
compile cache for any data set of the same kind. Without sample weights the
labels are the observed variable ``y``; with weights the log-likelihood
:math:`\sum_i s_i \log p(y_i \mid x_i, \theta)` is a ``pm.Potential`` named
``weighted_log_likelihood`` (PyMC has no weighted observed variables).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..core.objective import PosteriorObjective


def _prior(name: str, scale: np.ndarray, dims):
    """Normal(0, scale) where scale is finite, Flat where it is infinite."""
    scale = np.asarray(scale, dtype=np.float64)
    if np.all(np.isfinite(scale)):
        # Data, not a constant, like X: autoscaled values change with every
        # data set and must not change the compiled code.
        return pm.Normal(name, mu=0.0, sigma=pm.Data(f"{name}_prior_scale", scale), dims=dims)
    variable = pm.Flat(name, dims=dims)
    proper = np.isfinite(scale)
    if proper.any():
        normal = pm.Normal.dist(mu=0.0, sigma=scale[proper])
        pm.Potential(f"{name}_prior", pm.logp(normal, variable[proper]).sum())
    return variable


def build_model(
    objective: PosteriorObjective,
    feature_names: list[str],
    classes: np.ndarray,
) -> tuple[pm.Model, list]:
    """Write the posterior of ``objective`` as a PyMC model.

    Parameters
    ----------
    objective : PosteriorObjective
        Carries the training data (through its likelihood), the prior scales
        and the free coordinates.
    feature_names : list of str
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    model : pm.Model
    free_variables : list of two variables
        The intercept block and the coefficient block, in the objective's order.
    """
    likelihood, layout = objective.likelihood, objective.layout
    n_rows, n_features = layout.n_rows, layout.n_features
    binary = layout.binary
    coords = {"feature": list(feature_names), "obs_id": np.arange(len(likelihood.y))}
    if not binary:
        coords["class"] = list(classes)
    if layout.reference and not binary:
        coords["free_class"] = list(classes[1:])
    if layout.sum_to_zero:
        coords["contrast"] = np.arange(n_rows - 1)

    intercept_scale = objective.scale[: layout.n_intercepts]
    coef_scale = objective.scale[layout.n_intercepts :].reshape(n_rows, n_features)
    with pm.Model(coords=coords) as model:
        X = pm.Data("X", likelihood.X, dims=("obs_id", "feature"))
        if binary:
            intercept = _prior("intercept", intercept_scale[0], dims=())
            coef = _prior("coef", coef_scale[0], dims="feature")
            free = [intercept, coef]
            eta = intercept + X @ coef
        else:
            if layout.reference:
                free_intercept = _prior("intercept_free", intercept_scale, dims="free_class")
                free_coef = _prior("coef_free", coef_scale, dims=("free_class", "feature"))
                zero = pt.zeros((1,))
                pm.Deterministic("intercept", pt.concatenate([zero, free_intercept]), dims="class")
                pm.Deterministic(
                    "coef",
                    pt.concatenate([pt.zeros((1, n_features)), free_coef], axis=0),
                    dims=("class", "feature"),
                )
                intercept, coef = free_intercept, free_coef
            elif layout.sum_to_zero:
                free_intercept = _prior("intercept_contrast", intercept_scale, dims="contrast")
                coef = free_coef = _prior("coef", coef_scale, dims=("class", "feature"))
                intercept = pm.Deterministic(
                    "intercept", pt.as_tensor(layout.contrasts) @ free_intercept, dims="class"
                )
            else:
                intercept = free_intercept = _prior("intercept", intercept_scale, dims="class")
                coef = free_coef = _prior("coef", coef_scale, dims=("class", "feature"))
            free = [free_intercept, free_coef]
            eta = intercept + X @ coef.T
            if layout.reference:
                eta = pt.concatenate([pt.zeros((eta.shape[0], 1)), eta], axis=1)
        _likelihood(eta, likelihood.y, likelihood.sample_weight, binary)
    return model, free


def _likelihood(eta, codes: np.ndarray, sample_weight: np.ndarray, binary: bool) -> None:
    """Observed ``y`` (unweighted) or a weighted log-likelihood potential."""
    labels = pm.Data("class_code", codes.astype(np.int64), dims="obs_id")
    family = pm.Bernoulli if binary else pm.Categorical
    if np.all(sample_weight == 1.0):
        family("y", logit_p=eta, observed=labels, dims="obs_id")
        return
    weights = pm.Data("sample_weight", sample_weight, dims="obs_id")
    pointwise = pm.logp(family.dist(logit_p=eta), labels)
    pm.Potential("weighted_log_likelihood", (weights * pointwise).sum())
