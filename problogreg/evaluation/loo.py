r"""Leave-one-out scores of any fitted model, checked against the data it was fitted on.

* Bayesian models answer through their own ``loo(X, y, sample_weight)``
  (PSIS-LOO of NUTS or Laplace draws, exact closed-form LOO of the conjugate
  generative models);
* a bare MAP fit is scored by :func:`approximate_loo`, one Newton step from the
  full-data optimum per left-out row (exact refits where that step is poor, or
  for every row when that is cheap): a point-estimate score with no posterior
  averaging.
"""

from __future__ import annotations

import numpy as np

from ..core.numerics import log_softmax
from ..core.validation import validate_training_data
from ..models._binomial import binomial_rows, check_trials
from ..models.laplace import LaplaceLogisticRegression
from ..models.map import MAPLogisticRegression
from ..models.nuts import PyMCLogisticRegression
from ..posterior.gaussian import laplace_posterior, logit_moments
from ..posterior.loo import pointwise_loo
from ..posterior.refit_loo import RefitProblem, refits_are_cheap, resolve_loo
from .binomial import leave_one_group_out

#: Rows whose leverage exceeds this multiple of the average leverage get an exact refit
#: instead of the one-step approximation (the high-leverage rule of regression
#: diagnostics, Hoaglin & Welsch 1978, uses 2 or 3 times p / n).
LEVERAGE_FACTOR = 3.0


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


def approximate_loo(model: MAPLogisticRegression, X, y, sample_weight=None, resolve=True):
    r"""Leave-one-out ELPD of a point estimate: one Newton step per row, refits where it fails.

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

    The step is poor for rows of high *leverage* :math:`h_i`, the largest
    eigenvalue of :math:`s_i W_i Q_i` (:math:`s_i w_i q_i` for two classes: the
    share of the row's own curvature in the precision of its linear predictor;
    the step divides by :math:`1 - h_i`). With ``resolve``, every row is refitted
    exactly (Newton from :math:`\hat\theta` without the row) when that is cheap
    (:func:`~problogreg.posterior.refit_loo.refits_are_cheap`), else the rows with
    :math:`h_i` above :data:`LEVERAGE_FACTOR` times the average leverage are
    (their sum is the number of effectively fitted parameters).

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
    own_share = curvature @ cov
    system = np.eye(p.shape[1]) - own_share
    shift = np.einsum("ikl,il->ik", cov, np.linalg.solve(system, gradient[:, :, None])[..., 0])
    loo_logits = logits.copy()
    loo_logits[:, free] += shift
    rows = np.arange(n)
    elpd_i = log_softmax(loo_logits)[rows, codes]
    plug_in = np.log(proba[rows, codes])
    loo = pointwise_loo(
        weights * elpd_i,
        weights * plug_in,
        n_samples=1,
        method="approximate LOO of the point estimate",
    )
    if not resolve:
        return loo
    problem = RefitProblem(X, codes, weights, model.result_, model.tol, model.max_iter, "point")
    rng = np.random.default_rng(0)  # only K-fold's fold assignment draws
    if refits_are_cheap(problem):
        return resolve_loo(loo, problem, np.ones(n, dtype=bool), rng, reason="cheap", max_refits=n)
    leverage = np.abs(np.linalg.eigvals(own_share)).max(axis=1)
    flagged = leverage > LEVERAGE_FACTOR * leverage.mean()
    reason = f"leverage > {LEVERAGE_FACTOR:g} x average"
    return resolve_loo(loo, problem, flagged, rng, reason=reason)


def model_loo(
    model,
    X,
    y,
    sample_weight=None,
    random_state=0,
    name: str = "model",
    resolve: bool = True,
    trials=None,
):
    """ELPD-LOO of one fitted model on the data it was fitted on (see the module docstring).

    ``resolve`` (MAP, Laplace, NUTS) replaces unreliable leave-one-out values by refits
    or K-fold (see :mod:`problogreg.posterior.refit_loo`); False keeps the one-shot
    estimate and its warnings. With ``trials`` (a fit on binomial counts, ``y`` the
    successes) a group is left out whole (see :mod:`problogreg.evaluation.binomial`).
    """
    if trials is not None:
        return _binomial_loo(model, X, y, sample_weight, random_state, name, trials)
    check_fitted_on(model, X, y, sample_weight, name)
    if isinstance(model, LaplaceLogisticRegression | PyMCLogisticRegression):
        return model.loo(X, y, sample_weight, random_state=random_state, resolve=resolve)
    if hasattr(model, "loo"):
        return model.loo(X, y, sample_weight)
    if isinstance(model, MAPLogisticRegression):
        return approximate_loo(model, X, y, sample_weight, resolve=resolve)
    raise TypeError(
        f"Cannot score {name} ({type(model).__name__}): it has no loo(X, y) method and is "
        "not a problogreg logistic model."
    )


def _binomial_loo(model, X, successes, sample_weight, random_state, name, trials):
    """Leave-one-group-out ELPD of a fit on binomial counts (Laplace and NUTS: their own
    PSIS-LOO over groups; MAP: exact refits without each group)."""
    check_trials(model, trials)
    check_fitted_on(model, *binomial_rows(X, successes, sample_weight, trials)[:3], name)
    if isinstance(model, LaplaceLogisticRegression | PyMCLogisticRegression):
        return model.loo(X, successes, sample_weight, trials=trials, random_state=random_state)
    return leave_one_group_out(model, X, successes, trials, sample_weight)
