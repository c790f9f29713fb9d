r"""What the generative classifiers share: class priors, posterior sampling, exact LOO.

A subclass implements ``_conjugate_posterior(data)`` (a
:class:`~._conjugate.GenerativePosterior` for validated training data); this base
turns it into the ArviZ objects that put generative and discriminative models
side by side. Both report the *conditional* :math:`\log p(y_i \mid x_i, \theta)`,
not the joint :math:`\log p(x_i, y_i \mid \theta)`, so that ``az.compare``
compares like with like.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import Interval

from .._validation import FitData, feature_names, validate_fit_data
from ._conjugate import DirichletPosterior, FixedClassPrior

#: Dims of each posterior variable after (chain, draw); coords are named in DESIGN.md.
PARAMETER_DIMS = {
    "class_prior": ["class"],
    "mean": ["class", "feature"],
    "covariance": ["feature", "feature_bis"],
    "variance": ["class", "feature"],
    "feature_prob": ["class", "feature"],
}

#: Working-memory budget (numbers) of one block of draws in ``sample_posterior``.
BLOCK_ELEMENTS = 2**22

BAYES_PARAMETER_CONSTRAINTS = {
    "class_prior": ["array-like", None],
    "dirichlet_concentration": [Interval(Real, 0, None, closed="neither")],
    "mean_prior_count": [Interval(Real, 0, None, closed="neither")],
}


def conditional_log_proba(joint: np.ndarray) -> np.ndarray:
    r"""Conditional from joint, :math:`\log p(k \mid x) = \log p(x, k) - \log\sum_j p(x, j)`.

    With :math:`z_k = \log p(x, k)`, :math:`m = \max_k z_k` attained at
    :math:`k^*` and :math:`r = \sum_{j \ne k^*} e^{z_j - m}`, this is
    :math:`z_k - m - \operatorname{log1p}(r)`: unlike a plain log-sum-exp it keeps
    full relative precision for probabilities near 1 (log values down to
    about -1e-300 instead of rounding to 0 below 1e-16), so PSIS-LOO still sees
    distinct values on well-separated classes.
    """
    top = np.argmax(joint, axis=-1)[..., None]
    largest = np.take_along_axis(joint, top, axis=-1)
    ratio = np.exp(joint - largest)
    np.put_along_axis(ratio, top, 0.0, axis=-1)
    return joint - largest - np.log1p(ratio.sum(axis=-1, keepdims=True))


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


class GenerativeBayesMixin:
    """``sample_posterior`` and ``loo`` from a conjugate posterior.

    Subclasses define ``_conjugate_posterior(data)`` and the parameters
    ``class_prior`` and ``dirichlet_concentration``.
    """

    def _validated_copy(self, X, y):
        """Validate (X, y) on an unfitted copy, so the estimator itself is not changed."""
        estimator = clone(self)
        estimator._validate_params()
        return estimator, estimator._check_fit_data(validate_fit_data(estimator, X, y))

    def _check_fit_data(self, data: FitData) -> FitData:
        """Model-specific checks of validated data (none by default)."""
        return data

    def _class_prior_posterior(self, data: FitData, counts: np.ndarray):
        if self.class_prior is None:
            return DirichletPosterior.from_counts(counts, self.dirichlet_concentration)
        return FixedClassPrior(resolve_class_prior(self.class_prior, data.classes, counts))

    def sample_posterior(self, X, y, draws=1000, chains=4, random_state=None):
        """Independent draws from the conjugate posterior given (X, y), as a DataTree.

        The draws are exact and independent; ``chains`` only shapes them, so
        that ArviZ's diagnostics apply unchanged.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        draws, chains : int
        random_state : int, numpy Generator or None

        Returns
        -------
        xarray.DataTree
            ``posterior``: the model's parameters (``class_prior``, ``mean`` and
            ``covariance``, ``variance`` or ``feature_prob``) and, where the logit
            is linear in x, the implied ``coef`` (dims feature, or class and
            feature) and ``intercept`` in the layout of ``coef_``.
            ``log_likelihood``: ``y`` (chain, draw, obs_id), the conditional
            :math:`\\log p(y_i \\mid x_i, \\theta)`. ``observed_data``: ``y``.
        """
        from ._arviz import posterior_datatree

        estimator, data = self._validated_copy(X, y)
        posterior = estimator._conjugate_posterior(data)
        n_draws = int(draws) * int(chains)
        samples = posterior.sample(np.random.default_rng(random_state), n_draws)
        log_likelihood = _conditional_log_likelihood(posterior, samples, data)

        variables = {name: (value, PARAMETER_DIMS[name]) for name, value in samples.items()}
        linear = posterior.implied_linear(samples)
        if linear is not None:
            variables.update(_implied_coef_intercept(*linear))
        shape = (int(chains), int(draws))
        variables = {
            name: (value.reshape(shape + value.shape[1:]), dims)
            for name, (value, dims) in variables.items()
        }
        names = feature_names(estimator)
        coords = {"feature": names, "feature_bis": names, "class": list(data.classes)}
        return posterior_datatree(
            variables, log_likelihood.reshape((*shape, -1)), data.classes[data.y], coords
        )

    def loo(self, X, y):
        """Exact leave-one-out ELPD of the conditional posterior predictive.

        For every sample the posterior is refitted without it (a closed-form
        downdate of the conjugate statistics; the data-derived hyperparameters
        stay at their full-data values) and the score is the posterior
        predictive of its label given its features,

        .. math::

            \\log p(y_i \\mid x_i, D_{-i})
            = \\log \\frac{p(x_i, y_i \\mid D_{-i})}{\\sum_k p(x_i, k \\mid D_{-i})},

        with :math:`p(x, k \\mid D) = \\int \\pi_k p(x \\mid \\theta_k)\\,
        p(\\theta \\mid D)\\, d\\theta` in closed form (Dirichlet mean times a
        Student-t or Beta-Bernoulli density). This is the Bayesian predictive of
        y given x, which also learns from x_i; ``az.loo`` on
        :meth:`sample_posterior` instead estimates
        :math:`\\log E[p(y_i \\mid x_i, \\theta)]` under a posterior that still
        contains x_i, so the two differ slightly in small samples.

        Returns
        -------
        arviz.ELPDDataLOO
            With pointwise ``elpd_i`` (obs_id), ``pareto_k`` all 0 (nothing is
            importance sampled) and ``p`` = full-data lpd minus elpd; accepted by
            ``az.compare`` beside PSIS-LOO results.
        """
        from ._arviz import exact_loo

        estimator, data = self._validated_copy(X, y)
        posterior = estimator._conjugate_posterior(data)
        rows = np.arange(len(data.y))
        elpd_i = conditional_log_proba(posterior.loo_log_predictive(data.X, data.y))[rows, data.y]
        lpd_i = conditional_log_proba(posterior.log_predictive(data.X))[rows, data.y]
        return exact_loo(elpd_i, lpd_i)


def _conditional_log_likelihood(posterior, samples: dict, data: FitData) -> np.ndarray:
    """:math:`\\log p(y_i \\mid x_i, \\theta_s)`, shape (S, n), in blocks of draws.

    Blocks keep the (draws, samples, classes, features) intermediates of
    ``class_logits`` near ``BLOCK_ELEMENTS`` numbers, whatever the data size.
    """
    n_draws = len(samples["class_prior"])
    n, n_features = data.X.shape
    block = max(1, BLOCK_ELEMENTS // (n * data.n_classes * n_features))
    rows = np.arange(n)
    log_likelihood = np.empty((n_draws, n))
    for start in range(0, n_draws, block):
        part = {name: value[start : start + block] for name, value in samples.items()}
        log_proba = conditional_log_proba(posterior.class_logits(part, data.X))
        log_likelihood[start : start + block] = log_proba[:, rows, data.y]
    return log_likelihood


def _implied_coef_intercept(weights: np.ndarray, offsets: np.ndarray) -> dict:
    """Per-draw coef/intercept in the layout of ``coef_``: binary is the contrast 1 - 0."""
    if weights.shape[1] == 2:
        return {
            "coef": (weights[:, 1] - weights[:, 0], ["feature"]),
            "intercept": (offsets[:, 1] - offsets[:, 0], []),
        }
    return {"coef": (weights, ["class", "feature"]), "intercept": (offsets, ["class"])}


def centre_and_spread(estimator, data: FitData):
    """Grand mean and variance of every feature: the centre and scale of the default priors.

    Raises
    ------
    ValueError
        For constant features: they carry no class information and give the
        data-scaled prior no scale.
    """
    from ._statistics import weighted_mean_variance

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
