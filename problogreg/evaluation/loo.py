r"""Leave-one-out scores of any fitted model, checked against the data it was fitted on.

* Bayesian models answer through their own ``loo(X, y, sample_weight)``
  (PSIS-LOO of NUTS or Laplace draws, exact closed-form LOO of the conjugate
  generative models);
* a bare MAP fit is scored by :func:`approximate_loo`, one Newton step from the
  full-data optimum per left-out row: a point-estimate score with no posterior
  averaging.
"""

from __future__ import annotations

import numpy as np

from ..core.numerics import log_softmax
from ..core.validation import validate_training_data
from ..models.laplace import LaplaceLogisticRegression
from ..models.map import MAPLogisticRegression
from ..posterior.gaussian import laplace_posterior, logit_moments
from ..posterior.loo import pointwise_loo


def check_fitted_on(model, X, y, sample_weight=None, name: str = "model") -> None:
    """Refuse data that ``model`` was not fitted on (ValueError), or a model that is not a
    fitted problogreg estimator (TypeError); see
    :func:`~problogreg.core.validation.validate_training_data`."""
    if getattr(model, "data_fingerprint_", None) is None:
        raise TypeError(
            f"Cannot score {name} ({type(model).__name__}): it is not a fitted problogreg "
            "model (no data_fingerprint_). Fit it first."
        )
    validate_training_data(model, X, y, sample_weight, name=name)


def approximate_loo(model: MAPLogisticRegression, X, y, sample_weight=None):
    r"""Approximate leave-one-out ELPD of a point estimate by one Newton step.

    Dropping row i (weight :math:`s_i`) from the objective and taking one
    Newton step from :math:`\hat\theta` moves its linear predictor by (Woodbury)

    .. math::

        \eta_{-i} = \hat\eta_i + Q_i (I - s_i W_i Q_i)^{-1} s_i g_i,

    where :math:`Q_i` is the covariance of :math:`\eta_i` under
    :math:`N(\hat\theta, H^{-1})`, :math:`W_i = \mathrm{diag}(p_i) - p_i p_i^\top`
    and :math:`g_i = p_i - e_{y_i}` (restricted to the model's free rows).
    For binary models this is
    :math:`\eta_{-i} = \hat\eta_i + s_i q_i (p_i - y_i)/(1 - s_i w_i q_i)`.
    The score is :math:`\sum_i s_i \log p(y_i \mid x_i, \theta_{-i})`.

    Returns
    -------
    LOOResult
    """
    X, codes, weights = validate_training_data(model, X, y, sample_weight)
    n = len(codes)
    layout = model.result_.layout
    logits, cov = logit_moments(laplace_posterior(model.result_), layout, X)
    proba = np.exp(log_softmax(logits))
    free = slice(1, None) if layout.reference else slice(None)
    p, cov = proba[:, free], cov[:, free, free]
    gradient = weights[:, None] * (proba - np.eye(proba.shape[1])[codes])[:, free]
    curvature = weights[:, None, None] * (
        np.einsum("ik,kl->ikl", p, np.eye(p.shape[1])) - p[:, :, None] * p[:, None, :]
    )
    system = np.eye(p.shape[1]) - curvature @ cov
    shift = np.einsum("ikl,il->ik", cov, np.linalg.solve(system, gradient[:, :, None])[..., 0])
    loo_logits = logits.copy()
    loo_logits[:, free] += shift
    rows = np.arange(n)
    elpd_i = log_softmax(loo_logits)[rows, codes]
    plug_in = np.log(proba[rows, codes])
    return pointwise_loo(
        weights * elpd_i,
        weights * plug_in,
        n_samples=1,
        method="approximate LOO of the point estimate",
    )


def model_loo(model, X, y, sample_weight=None, random_state=0, name: str = "model"):
    """ELPD-LOO of one fitted model on the data it was fitted on (see the module docstring)."""
    check_fitted_on(model, X, y, sample_weight, name)
    if isinstance(model, LaplaceLogisticRegression):
        return model.loo(X, y, sample_weight, random_state=random_state)
    if hasattr(model, "loo"):
        return model.loo(X, y, sample_weight)
    if isinstance(model, MAPLogisticRegression):
        return approximate_loo(model, X, y, sample_weight)
    raise TypeError(
        f"Cannot score {name} ({type(model).__name__}): it has no loo(X, y) method and is "
        "not a problogreg logistic model."
    )
