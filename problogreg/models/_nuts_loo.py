r"""Leave-one-out of a NUTS fit where PSIS fails: refits started from the Laplace fit.

PSIS-LOO reweights the full-data draws towards each leave-one-out posterior; for
a row whose Pareto k exceeds the threshold that reweighting is unreliable. Such
a row is refitted (:mod:`problogreg.posterior.refit_loo`): Newton from the
full-data mode without the row, then importance sampling from a multivariate t at
that refit's Laplace Gaussian towards the exact posterior without the row. This
targets the same quantity as NUTS-based LOO, :math:`\log p(y_i \mid x_i, D_{-i})`
under the exact posterior, for a Newton solve and S likelihood evaluations. Where
that importance sampling is unreliable too (its own k above the threshold), the
row (or fold) is refitted by NUTS itself: the same estimator, with the row's
weight set to 0 (:data:`REFIT_DRAWS` draws per chain), and

.. math::

    \log p(y_i \mid x_i, D_{-i}) \approx \log \frac1S \sum_s p(y_i \mid x_i, \theta_s).

With too many flagged rows the estimate becomes K-fold cross-validation.
"""

from __future__ import annotations

import numpy as np
from scipy import special
from sklearn.base import clone

from ..core.validation import check_random_state
from ..posterior.refit_loo import RefitProblem, resolve_loo

#: Draws per chain of a NUTS refit (the tuning follows the estimator's settings).
REFIT_DRAWS = 500


def nuts_refit(model, X, codes, weights):
    """A callable that refits ``model`` by NUTS without some rows and scores them."""

    def refit(rows, rng):
        held_out = weights.copy()
        held_out[rows] = 0.0
        seed = int(rng.integers(2**31))
        refitted = clone(model).set_params(
            draws=min(model.draws, REFIT_DRAWS), random_state=seed, progressbar=False
        )
        refitted.fit(X, model.classes_[codes], sample_weight=held_out)
        log_lik = refitted._predictor().pointwise_log_likelihood(X[rows], codes[rows])
        n_draws = len(log_lik)
        log_pred = special.logsumexp(log_lik, axis=0) - np.log(n_draws)
        relative = np.exp(log_lik - log_pred)
        return log_pred, relative.var(axis=0) / n_draws, 0.0, True

    return "NUTS", refit


def resolve_nuts_loo(model, loo, X, codes, weights, random_state):
    """``loo`` (PSIS-LOO of ``model``'s draws) with its rows of high Pareto k refitted."""
    problem = RefitProblem(X, codes, weights, model.result_)
    flagged = ~(loo.pareto_k.values <= loo.good_k)  # NaN k is unreliable too
    rng = check_random_state(random_state)
    return resolve_loo(
        loo,
        problem,
        flagged,
        rng,
        reason=f"k > {loo.good_k:.2f}",
        fallback=nuts_refit(model, X, codes, weights),
    )
