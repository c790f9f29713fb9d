"""Predictions under a Gaussian posterior: the moderated (probit) closed form, Monte Carlo,
the plug-in, and intervals."""

from __future__ import annotations

import numpy as np
from scipy import special

from ..core.validation import check_count, check_probability, validate_predict_data
from ..posterior.draws import BLOCK_ELEMENTS, normal_interval
from ..posterior.gaussian import logit_moments, moderated_log_proba
from ._blocked_predictions import lazy_on_dask

_PREDICT_METHODS = ("probit", "mc", "map", "corrected")


class GaussianPredictionMixin:
    """Posterior predictions of a model with a Gaussian posterior ``posterior_`` over the
    free coordinates of ``result_.layout``; ``_draws(n, random_state)`` makes draws."""

    def _check_method(self, method: str) -> None:
        if method not in _PREDICT_METHODS:
            raise ValueError(
                f"method must be one of {', '.join(map(repr, _PREDICT_METHODS))}; got {method!r}."
            )

    def _row_blocks(self, n_rows: int):
        """Blocks of rows whose (rows x K x K) moment arrays stay within the block budget."""
        step = max(1, BLOCK_ELEMENTS // len(self.classes_) ** 2)
        for start in range(0, n_rows, step):
            yield slice(start, start + step)

    @lazy_on_dask
    def predict_log_proba(self, X, method="probit", draws=4000, random_state=0):
        """Log of :meth:`predict_proba` (computed stably for the probit and plug-in methods)."""
        self._check_method(method)
        if method == "map":
            return super().predict_log_proba(X)
        X = validate_predict_data(self, X)
        if method == "corrected":
            return self._corrected_predictor().mean_log_proba(X)
        if method == "mc":
            _, _, predictor = self._draws(check_count(draws, "draws"), random_state)
            return predictor.mean_log_proba(X)
        log_proba = np.empty((X.shape[0], len(self.classes_)))
        for rows in self._row_blocks(X.shape[0]):
            moments = logit_moments(self.posterior_, self.result_.layout, X[rows])
            log_proba[rows] = moderated_log_proba(*moments)
        return log_proba

    @lazy_on_dask
    def predict_proba(self, X, method="probit", draws=4000, random_state=0):
        """Posterior predictive class probabilities, shape (n_samples, n_classes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        method : {"probit", "mc", "map", "corrected"}, default="probit"
            "probit": closed form. For two classes the moderated output
            :math:`\\sigma(\\mu / \\sqrt{1 + \\pi s^2 / 8})`, with :math:`\\mu, s^2`
            the posterior mean and variance of the linear predictor; for more
            classes the pairwise (mean-field) extension of the same formula,
            see :func:`~problogreg.posterior.gaussian.moderated_log_proba`.
            "mc": the average of the softmax over ``draws`` posterior draws
            (seeded by ``random_state``). "map": plug-in probabilities at the MAP.
            "corrected": :math:`\\sum_s w_s\\,\\mathrm{softmax}(\\eta_s)` over the
            importance-weighted draws of ``check_approximation()`` (call it first):
            the exact posterior's predictive.
        draws : int, default=4000
            Monte Carlo draws for ``method="mc"``.
        random_state : None, int or numpy Generator, default=0
        """
        return np.exp(self.predict_log_proba(X, method, draws, random_state))

    @lazy_on_dask
    def decision_function(self, X):
        """Moderated scores: log-odds of ``classes_[1]`` (binary) or log-probabilities.

        These are the scores of the default ``predict_proba`` (method "probit"),
        so they rank samples the same way.
        """
        log_proba = self.predict_log_proba(X)
        return log_proba[:, 1] - log_proba[:, 0] if len(self.classes_) == 2 else log_proba

    @lazy_on_dask
    def predict_interval(self, X, prob=0.94, draws=4000, random_state=0, method="gaussian"):
        """Equal-tailed posterior intervals of each class probability.

        Binary: exact under the Gaussian posterior. The linear predictor is
        :math:`\\eta \\sim N(\\mu, s^2)` and :math:`\\sigma` is monotone, so
        :math:`p_1 \\in [\\sigma(\\mu - z s), \\sigma(\\mu + z s)]` with
        :math:`z = \\Phi^{-1}((1 + \\mathrm{prob})/2)`, and :math:`p_0 = 1 - p_1`.
        Multiclass: quantiles over ``draws`` posterior draws.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        prob : float, default=0.94
            Probability mass inside each interval.
        draws : int, default=4000
            Monte Carlo draws (multiclass only).
        random_state : None, int or numpy Generator, default=0
        method : {"gaussian", "corrected"}, default="gaussian"
            "corrected": weighted quantiles over the importance-weighted draws of
            ``check_approximation()`` (call it first): intervals of the exact posterior.

        Returns
        -------
        lower, upper : ndarrays of shape (n_samples, n_classes)
            Lazy Dask arrays when X is a Dask array or DataFrame.
        """
        prob = check_probability(prob, "prob")
        if method not in ("gaussian", "corrected"):
            raise ValueError(f"method must be 'gaussian' or 'corrected'; got {method!r}.")
        X = validate_predict_data(self, X)
        if method == "corrected":
            return self._corrected_predictor().interval(X, prob)
        if len(self.classes_) == 2:
            mean, cov = logit_moments(self.posterior_, self.result_.layout, X)
            lower, upper = special.expit(normal_interval(mean[:, 1], np.sqrt(cov[:, 1, 1]), prob))
            return np.column_stack([1 - upper, lower]), np.column_stack([1 - lower, upper])
        _, _, predictor = self._draws(check_count(draws, "draws"), random_state)
        return predictor.interval(X, prob)
