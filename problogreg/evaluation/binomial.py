r"""Scores of fits on grouped binomial counts, with the group as the unit.

A group g (covariates :math:`x_g`, :math:`s_g` successes in :math:`n_g` trials,
weight :math:`w_g`) is scored by :math:`\log \mathrm{Binomial}(s_g \mid n_g, p)`,
binomial coefficient included (see :mod:`problogreg.models._binomial`):

* leave-one-out leaves out a whole group: Laplace and NUTS by their own
  ``loo(..., trials=)`` (PSIS over groups), a MAP fit by
  :func:`leave_one_group_out` (exact refits);
* held-out scores (:func:`binomial_test_rows`) are the log loss per group
  and the Brier score, accuracy and calibration error of the trials.
"""

from __future__ import annotations

import numpy as np

from ..core.validation import validate_training_data
from ..models._binomial import SUCCESS, binomial_groups
from ..posterior.loo import pointwise_loo
from ..posterior.refit_loo import RefitProblem


def group_log_likelihood(model, X, groups) -> np.ndarray:
    r""":math:`\log \mathrm{Binomial}(s_g \mid n_g, p(x_g))` of a fitted model's predictions,
    shape (G,), unweighted."""
    log_proba = np.asarray(model.predict_log_proba(X))
    success, failure = log_proba[:, SUCCESS], log_proba[:, 1 - SUCCESS]
    return groups.grouped(np.concatenate([success, failure])[None])[0]


def leave_one_group_out(model, X, successes, trials, sample_weight=None):
    r"""Exact leave-one-group-out ELPD of a MAP fit on binomial counts.

    For each group g the MAP is refitted without it (Newton from the full-data mode,
    the prior kept as fitted) and the group is scored at the refit's mode:
    :math:`\mathrm{elpd} = \sum_g w_g \log \mathrm{Binomial}(s_g \mid n_g,
    p(x_g; \hat\theta_{-g}))`. One refit per group.

    Returns
    -------
    LOOResult
    """
    groups = binomial_groups(X, successes, trials, sample_weight)
    rows, labels, row_weights = groups.rows(X)
    rows, codes, row_weights = validate_training_data(model, rows, labels, row_weights)
    problem = RefitProblem(
        rows, codes, row_weights, model.result_, model.tol, model.max_iter, "point"
    )
    n_groups = len(groups.trials)
    held_out_rows = np.empty(2 * n_groups)
    rng = np.random.default_rng(0)  # unused by point refits; the protocol takes one
    for g in range(n_groups):
        both_rows = np.array([g, n_groups + g])
        held_out_rows[both_rows] = problem.refit(both_rows, rng)[0]
    elpd_i = groups.weights * groups.grouped(held_out_rows[None])[0]
    lpd_i = groups.weights * group_log_likelihood(model, X, groups)
    return pointwise_loo(
        elpd_i, lpd_i, n_samples=1, method="exact leave-one-group-out refits of the point estimate"
    )


def binomial_test_rows(model, X, successes, trials):
    r"""What held-out scores of test groups need: the predicted probabilities, class codes
    and counts of each group's success and failure rows (so that Brier score, accuracy and
    calibration error are those of the ungrouped 0/1 trials), and the log loss per group,
    :math:`-\frac1G \sum_g \log \mathrm{Binomial}(s_g \mid n_g, p_g)`."""
    groups = binomial_groups(X, successes, trials)
    rows, labels, counts = groups.rows(X)
    proba = np.asarray(model.predict_proba(rows))
    return proba, labels, counts, float(-group_log_likelihood(model, X, groups).mean())
