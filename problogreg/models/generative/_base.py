r"""What the generative classifiers share: class priors and the posterior protocol.

A subclass implements ``_conjugate_posterior(data)`` (a
:class:`~._conjugate.GenerativePosterior` for validated training data) and
stores it at fit time; this base turns it into the ArviZ objects that put
generative and discriminative models side by side. Both report the
*conditional* :math:`\log p(y_i \mid x_i, \theta)`, not the joint
:math:`\log p(x_i, y_i \mid \theta)`, so that model comparison compares like
with like.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ...core.numerics import log_softmax, weighted_mean_variance
from ...core.validation import (
    FitData,
    check_count,
    check_random_state,
    feature_names,
    validate_training_data,
)
from ...posterior.arviz_io import coef_intercept_variables
from ...posterior.draws import DrawPredictor
from ...posterior.loo import pointwise_loo
from .._marginal_effects import MarginalEffectsMixin, draws_table
from .._posterior_api import check_draws, draws_datatree
from ._conjugate import DirichletPosterior, FixedClassPrior

#: Dims of each posterior variable after (chain, draw).
PARAMETER_DIMS = {
    "class_prior": ["class"],
    "mean": ["class", "feature"],
    "covariance": ["feature", "feature_bis"],
    "variance": ["class", "feature"],
    "feature_prob": ["class", "feature"],
}

BAYES_PARAMETER_CONSTRAINTS = {
    "class_prior": ["array-like", None],
    "dirichlet_concentration": [Interval(Real, 0, None, closed="neither")],
    "mean_prior_count": [Interval(Real, 0, None, closed="neither")],
}


def resolve_class_prior(class_prior, classes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The user's class probabilities, checked, or the weighted class frequencies."""
    if class_prior is None:
        return counts / counts.sum()
    prior = np.asarray(class_prior, dtype=np.float64)
    if prior.shape != (len(classes),):
        raise ValueError(
            f"class_prior has shape {prior.shape}, but y has {len(classes)} classes "
            f"{list(classes)}; give one probability per class, in that order."
        )
    if not np.all(np.isfinite(prior)) or np.any(prior <= 0) or not np.isclose(prior.sum(), 1):
        raise ValueError(
            f"class_prior must hold positive probabilities that sum to 1; got {prior.tolist()}."
        )
    return prior / prior.sum()


class GenerativeBayesMixin(MarginalEffectsMixin):
    """The posterior protocol (``sample_posterior``, ``loo``) from a conjugate posterior.

    Subclasses define ``_conjugate_posterior(data)`` and the parameters
    ``class_prior`` and ``dirichlet_concentration``, and call
    :meth:`_store_posterior` at the end of ``fit``: the posterior is part of the
    fitted state (sample weights included), so neither method refits.
    """

    def _store_posterior(self, data: FitData) -> None:
        self.data_fingerprint_ = data.fingerprint
        try:
            self.posterior_ = self._conjugate_posterior(data)
        except ValueError as err:
            # The maximum-likelihood fit stands; only the Bayesian version is unavailable.
            self._posterior_error = str(err)
            if hasattr(self, "posterior_"):
                del self.posterior_
        else:
            self._posterior_error = None

    def _fitted_posterior(self):
        check_is_fitted(self)
        if self._posterior_error is not None:
            raise ValueError(self._posterior_error)
        return self.posterior_

    def _class_prior_posterior(self, data: FitData, counts: np.ndarray):
        if self.class_prior is None:
            return DirichletPosterior.from_counts(counts, self.dirichlet_concentration)
        return FixedClassPrior(resolve_class_prior(self.class_prior, data.classes, counts))

    def sample_posterior(self, draws=1000, chains=4, random_state=None, X=None, y=None):
        """Independent draws from the fitted conjugate posterior, as a DataTree.

        The draws are exact and independent; ``chains`` only shapes them, so
        that ArviZ's diagnostics apply unchanged.

        Parameters
        ----------
        draws, chains : int, default 1000 and 4
        random_state : None, int or numpy Generator
        X, y : optional
            Data whose conditional log-likelihood :math:`\\log p(y_i \\mid x_i,
            \\theta)` is stored in the ``log_likelihood`` group.

        Returns
        -------
        xarray.DataTree
            ``posterior``: the model's parameters (``class_prior``, ``mean`` and
            ``covariance``, ``variance`` or ``feature_prob``) and, where the logit
            is linear in x, the implied ``coef`` (dims feature, or class and
            feature) and ``intercept`` in the layout of ``coef_``.
        """
        draws, chains = check_draws(draws, chains)
        samples, linear, predictor = self._draws(draws * chains, random_state)
        variables = {name: (value, PARAMETER_DIMS[name]) for name, value in samples.items()}
        if linear is not None:
            weights, offsets = linear
            variables.update(coef_intercept_variables(offsets, weights))
        attrs = {"inference_library": "problogreg", "method": "conjugate"}
        return draws_datatree(self, variables, predictor, chains, X, y, attrs)

    def _draws(self, n_draws: int, random_state):
        """Posterior samples, the implied linear weights (or None), and a DrawPredictor."""
        posterior = self._fitted_posterior()
        samples = posterior.sample(check_random_state(random_state), n_draws)
        linear = posterior.implied_linear(samples)
        if linear is None:
            predictor = DrawPredictor(
                lambda X: posterior.class_logits(samples, X),
                n_draws,
                len(self.classes_),
                numbers_per_logit=self.n_features_in_,
            )
        else:
            weights, offsets = linear
            predictor = DrawPredictor.linear(offsets, weights)
        return samples, linear, predictor

    def _effect_table(self, contrasts, ci_prob=0.95, draws=4000, random_state=0):
        """Marginal effects over ``draws`` draws of the conjugate posterior."""
        predictor = self._draws(check_count(draws, "draws"), random_state)[2]
        return draws_table(predictor, self.classes_, contrasts, ci_prob)

    def loo(self, X, y, sample_weight=None):
        """Exact leave-one-out ELPD of the conditional posterior predictive.

        For every row the posterior is downdated by that row with its whole
        weight :math:`s_i` (a closed-form update of the conjugate statistics;
        the data-derived hyperparameters stay at their full-data values) and
        the score is the posterior predictive of its label given its features,

        .. math::

            \\log p(y_i \\mid x_i, D_{-i})
            = \\log \\frac{p(x_i, y_i \\mid D_{-i})}{\\sum_k p(x_i, k \\mid D_{-i})},

        with :math:`p(x, k \\mid D) = \\int \\pi_k p(x \\mid \\theta_k)\\,
        p(\\theta \\mid D)\\, d\\theta` in closed form (Dirichlet mean times a
        Student-t or Beta-Bernoulli density), weighted by :math:`s_i` in the
        sum. This is the Bayesian predictive of y given x, which also learns
        from x_i; PSIS-LOO on :meth:`sample_posterior` instead estimates
        :math:`\\log E[p(y_i \\mid x_i, \\theta)]` under a posterior that still
        contains x_i, so the two differ slightly in small samples.

        Parameters
        ----------
        X, y : the training data.
        sample_weight : array-like, optional
            The training weights.

        Returns
        -------
        LOOResult
            With pointwise ``elpd_i`` (obs_id), ``pareto_k`` all 0 (nothing is
            importance sampled) and ``p`` = full-data lpd minus elpd; accepted by
            ``az.compare`` beside PSIS-LOO results.
        """
        posterior = self._fitted_posterior()
        X, codes, weights = validate_training_data(self, X, y, sample_weight)
        rows = np.arange(len(codes))
        elpd_i = log_softmax(posterior.loo_log_predictive(X, codes, weights))[rows, codes]
        lpd_i = log_softmax(posterior.log_predictive(X))[rows, codes]
        return pointwise_loo(weights * elpd_i, weights * lpd_i, n_samples=0, method="exact LOO")


def centre_and_spread(estimator, data: FitData):
    """Grand mean and variance of every feature: the centre and scale of the default priors.

    Raises
    ------
    ValueError
        For constant features: they carry no class information and give the
        data-scaled prior no scale.
    """
    mean, variance = weighted_mean_variance(data.X, data.sample_weight)
    if np.any(variance == 0):
        constant = [
            name for name, v in zip(feature_names(estimator), variance, strict=True) if v == 0
        ]
        raise ValueError(
            f"Features {constant} are constant, so they carry no class information and "
            "the data-scaled conjugate prior has no scale for them. Drop these columns."
        )
    return mean, variance
