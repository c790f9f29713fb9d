"""The corrected posterior of a Laplace fit: the Gaussian's draws weighted towards the
exact posterior by the importance-sampling check (:mod:`._approximation_check`), for
``summary``, ``predict_proba`` and ``predict_interval`` with ``method="corrected"``."""

from __future__ import annotations

from sklearn.utils.validation import check_is_fitted

from ..core.validation import check_count, feature_names, validate_training_data
from ..posterior.draws import DrawPredictor
from ..posterior.refit_loo import log_prior_of_draws
from ._approximation_check import importance_check, laplace_log_ratio


class CorrectedPosteriorMixin:
    """``check_approximation`` and the corrected draws it leaves, for a Laplace model
    with ``posterior_``, ``posterior_mean_``, ``result_``, ``_draws(n, random_state)``
    and ``_refit_problem(X, codes, weights)``."""

    def check_approximation(self, X, y, sample_weight=None, draws=4000, random_state=0):
        """Check the Laplace posterior by Pareto-smoothed importance sampling (PSIS).

        Draws :math:`\\phi_s \\sim q = N(\\hat\\phi, H^{-1})`, weights them by
        :math:`r_s = \\tilde p(\\phi_s \\mid y) / q(\\phi_s)` with
        :math:`\\tilde p` the unnormalised exact posterior, and smooths the largest
        ratios. Two answers (see :class:`ApproximationCheck`):

        * ``correction_reliable``: the Pareto shape k of the ratios' tail is below
          the threshold, so the self-normalised weights give trustworthy corrected
          posterior means and sds (and corrected summaries and predictions);
        * ``gaussian_usable``: moreover the plain Gaussian is usable as is: the
          correction moves every mean by at most 0.1 corrected sd and every sd by
          at most 10% (the thresholds of ``agreement()`` against NUTS).

        Parameters
        ----------
        X, y : the training data (the exact posterior is defined by them).
        sample_weight : array-like, optional
            The training weights, if the model was fitted with weights.
        draws : int, default=4000
        random_state : None, int or numpy Generator, default=0

        Returns
        -------
        ApproximationCheck
            Also stored as ``approximation_check_``: its weighted draws are the
            corrected posterior that ``summary(method="corrected")``,
            ``predict_proba(method="corrected")`` and
            ``predict_interval(method="corrected")`` use.
        """
        check_is_fitted(self)
        draws = check_count(draws, "draws", minimum=100)
        X, codes, weights = validate_training_data(self, X, y, sample_weight)
        sample = self._draws(draws, random_state)
        free = sample[0]
        objective = self._refit_problem(X, codes, weights).objective(weights)
        log_prior = log_prior_of_draws(objective, free)
        log_ratio = laplace_log_ratio(self.posterior_, sample, (X, codes, weights), log_prior)
        layout = self.result_.layout
        self.approximation_check_ = importance_check(
            free,
            log_ratio,
            self.posterior_mean_,
            self.posterior_.marginal_sd(),
            layout.free_labels(self.classes_, feature_names(self)),
        )
        return self.approximation_check_

    def _corrected_draws(self):
        """Free draws (S, p) and normalised log weights of the corrected posterior."""
        check_is_fitted(self)
        check = getattr(self, "approximation_check_", None)
        if check is None:
            raise ValueError(
                "method='corrected' uses the importance weights that check_approximation() "
                "computes: call model.check_approximation(X, y) on the training data first."
            )
        if not check.correction_reliable:
            raise ValueError(
                f"The importance-sampling correction is unreliable (Pareto k = "
                f"{check.pareto_k:.2f} >= {check.threshold:.2f}): corrected output would not "
                "be trustworthy either. Sample the exact posterior with PyMCLogisticRegression."
            )
        return check.draws, check.log_weights

    def _corrected_predictor(self) -> DrawPredictor:
        free, log_weights = self._corrected_draws()
        layout = self.result_.layout
        return DrawPredictor.linear(
            *layout.class_rows(layout.to_likelihood(free)), log_weights=log_weights
        )
