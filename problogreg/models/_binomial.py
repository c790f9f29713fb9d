r"""Grouped binomial data: ``fit(X, successes, trials=...)`` with the exact binomial likelihood.

Group g has covariates :math:`x_g`, :math:`s_g` successes out of :math:`n_g`
trials and a weight :math:`w_g`; its log-likelihood is

.. math::

    \ell_g(\theta) = \log\binom{n_g}{s_g} + s_g \log p(x_g) + (n_g - s_g)\log(1 - p(x_g)),

with :math:`p = \sigma(b + x^\top w)`. Up to the constant binomial coefficient this
is the log-likelihood of two rows of the binary model, :math:`(x_g, 1)` with
weight :math:`w_g s_g` and :math:`(x_g, 0)` with weight :math:`w_g (n_g - s_g)`, so
the fit (mode, Hessian, posterior, NUTS) runs on those rows and is exactly the
binomial fit, and the same as a fit to the ungrouped 0/1 trials (autoscaling
uses the sd of x over trials). The unit of leave-one-out stays the group:
:meth:`BinomialGroups.grouped` sums each group's two rows back into
:math:`\ell_g`, and ``log_likelihood_``, ``log_posterior_``, the Laplace evidence
and the ELPD include :math:`\log\binom{n_g}{s_g}` (as statsmodels' GLM ``llf``).

The ``log_likelihood`` group of a NUTS fit's ``idata_``, and of
``sample_posterior(X=, y=successes, trials=...)`` (NUTS and Laplace), holds one
observation per group, :math:`\ell_g` unweighted, so ``arviz.loo`` leaves out a group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from ..core.validation import rows_text, validate_sample_weight

#: Class labels of the two rows of a group: a failure and a success.
FAILURE, SUCCESS = 0, 1


@dataclass(frozen=True)
class BinomialGroups:
    """Validated binomial counts of G groups, and their expansion into weighted rows.

    Attributes
    ----------
    successes, trials, weights : ndarray of shape (G,)
    """

    successes: np.ndarray
    trials: np.ndarray
    weights: np.ndarray

    @property
    def log_coefficient(self) -> np.ndarray:
        r""":math:`\log\binom{n_g}{s_g}`, shape (G,)."""
        s, n = self.successes, self.trials
        return special.gammaln(n + 1) - special.gammaln(s + 1) - special.gammaln(n - s + 1)

    @property
    def log_likelihood_constant(self) -> float:
        r""":math:`\sum_g w_g \log\binom{n_g}{s_g}`."""
        return float(self.weights @ self.log_coefficient)

    def rows(self, X):
        """The weighted rows: X twice (successes, then failures), labels and weights."""
        doubled = pd.concat([X, X], ignore_index=True) if hasattr(X, "iloc") else np.vstack([X, X])
        labels = np.repeat([SUCCESS, FAILURE], len(self.trials))
        weights = np.concatenate(
            [self.weights * self.successes, self.weights * (self.trials - self.successes)]
        )
        return doubled, labels, weights

    def grouped(self, pointwise: np.ndarray) -> np.ndarray:
        """Per-group log-likelihoods (S, G) from the per-row values (S, 2G) of :meth:`rows`."""
        n_groups = len(self.trials)
        success, failure = pointwise[:, :n_groups], pointwise[:, n_groups:]
        failures = self.trials - self.successes
        # A group without failures (or successes) has 0 * (-inf) terms where p is 0 or 1.
        return (
            np.where(self.successes > 0, self.successes * success, 0.0)
            + np.where(failures > 0, failures * failure, 0.0)
            + self.log_coefficient
        )


def binomial_groups(X, successes, trials, sample_weight=None) -> BinomialGroups:
    """Check counts against X: integers with 0 <= successes <= trials, trials >= 1.

    Raises
    ------
    ValueError
        Naming the rows that break a rule, or when every trial (or none) is a success.
    """
    n_rows = len(X)
    values = []
    for name, array in (("successes", successes), ("trials", trials)):
        array = np.asarray(array, dtype=float).ravel()
        if array.shape != (n_rows,):
            raise ValueError(
                f"{name} has {array.size} values but X has {n_rows} rows; pass one count per row."
            )
        bad = ~np.isfinite(array) | (array < 0) | (array != np.round(array))
        if bad.any():
            raise ValueError(
                f"{name} must be non-negative integers; rows {rows_text(np.flatnonzero(bad))} "
                "(counting from 0) are not."
            )
        values.append(array)
    successes, trials = values
    bad = (trials < 1) | (successes > trials)
    if bad.any():
        raise ValueError(
            "Each row needs trials >= 1 and successes <= trials; rows "
            f"{rows_text(np.flatnonzero(bad))} (counting from 0) break this."
        )
    if successes.sum() == 0 or successes.sum() == trials.sum():
        outcome = "failures" if successes.sum() == 0 else "successes"
        raise ValueError(
            f"Every trial is one of the {outcome}: a logistic model needs both outcomes."
        )
    return BinomialGroups(successes, trials, validate_sample_weight(sample_weight, n_rows))


def binomial_rows(X, y, sample_weight, trials):
    """``(X, y, sample_weight, groups)`` for a fit: unchanged (groups None) without
    ``trials``, else the weighted rows of :class:`BinomialGroups` with ``y`` the successes."""
    if trials is None:
        return X, y, sample_weight, None
    groups = binomial_groups(X, y, trials, sample_weight)
    return (*groups.rows(X), groups)


def check_trials(estimator, trials) -> None:
    """Refuse scoring a binomial fit without ``trials`` (and the reverse), with the fix."""
    binomial = getattr(estimator, "binomial_", False)
    if binomial and trials is None:
        raise ValueError(
            "This model was fitted on binomial counts: pass the same successes as y and "
            "trials=... ."
        )
    if not binomial and trials is not None:
        raise ValueError("This model was fitted on class labels: leave trials out.")
