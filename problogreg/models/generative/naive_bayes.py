r"""NaiveBayes: features independent given the class, Gaussian or Bernoulli.

.. math::

    \log p(y = k \mid x) = \log \pi_k + \sum_j \log p(x_j \mid y = k)
    - \operatorname{logsumexp}_l(\cdot),

evaluated in log space throughout. Bernoulli features give a logit linear in x;
Gaussian features with class-specific variances give a quadratic one.
"""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ...core.numerics import log_softmax, weighted_mean_variance
from ...core.validation import FitData, validate_fit_data, validate_predict_data
from ._base import (
    BAYES_PARAMETER_CONSTRAINTS,
    GenerativeBayesMixin,
    centre_and_spread,
    resolve_class_prior,
)
from ._conjugate import (
    BetaPosterior,
    GenerativePosterior,
    NormalInverseGammaPosterior,
    bernoulli_log_density,
)
from ._statistics import ClassMoments


class NaiveBayes(GenerativeBayesMixin, ClassifierMixin, BaseEstimator):
    r"""Naive Bayes classifier with Gaussian or Bernoulli features.

    Maximum-likelihood fit (scikit-learn's ``GaussianNB`` / ``BernoulliNB``
    conventions):

    * ``"gaussian"``: class means and biased class variances per feature, plus
      ``var_smoothing`` times the largest feature variance.
    * ``"bernoulli"``: :math:`p_{kj} = (c_{kj} + \alpha) / (N_k + 2\alpha)` with
      :math:`c_{kj}` the weighted count of ones; X must hold only 0 and 1.
      :math:`\alpha = 0` is exact: :math:`0 \log 0 = 0`, and a sample that is
      impossible under every class is an error rather than NaN.

    Class priors are the weighted frequencies, or ``class_prior``.

    :meth:`sample_posterior` and :meth:`loo` use the conjugate Bayesian version:
    Dirichlet(:math:`\alpha_0`) class probabilities and, per class and feature,
    a Normal-Inverse-Gamma prior (Gaussian) or Beta(:math:`\beta_0, \beta_0`)
    (Bernoulli). Gaussian defaults, weakly informative and scaled to the data:
    :math:`\mu_{kj} \mid \sigma^2_{kj} \sim N(\bar x_j, \sigma^2_{kj}/\kappa_0)`
    with :math:`\kappa_0 = 0.01`, :math:`\sigma^2_{kj} \sim IG(\nu_0/2,
    (\nu_0 - 2)\operatorname{var}(x_j)/2)` with :math:`\nu_0 = 3`, whose mean is
    the marginal variance of :math:`x_j`. ``alpha`` and ``var_smoothing`` belong
    to the maximum-likelihood fit only; the Bernoulli predictive with
    :math:`\beta_0` equals the smoothed estimate with :math:`\alpha = \beta_0`.
    The Gaussian logit is quadratic, so only the Bernoulli posterior carries
    implied ``coef`` and ``intercept``.

    Parameters
    ----------
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
    alpha : float >= 0, default=1.0
        Additive (Laplace) smoothing of the Bernoulli probabilities.
    var_smoothing : float >= 0, default=1e-9
        Fraction of the largest feature variance added to every Gaussian variance.
    class_prior : array-like of shape (n_classes,), default=None
        Fixed class probabilities (in ``classes_`` order); None estimates them.
    dirichlet_concentration : float, default=1.0
        :math:`\alpha_0`.
    mean_prior_count : float, default=0.01
        :math:`\kappa_0` (Gaussian).
    variance_prior_dof : float > 2, default=3.0
        :math:`\nu_0` (Gaussian).
    beta_prior : float, default=1.0
        :math:`\beta_0` (Bernoulli); 1 is uniform.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    class_prior_ : ndarray of shape (n_classes,)
    means_, variances_ : ndarray of shape (n_classes, n_features)
        Gaussian only; ``variances_`` includes the smoothing.
    feature_prob_ : ndarray of shape (n_classes, n_features)
        Bernoulli only: :math:`p(x_j = 1 \mid y = k)`.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X was a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from problogreg import NaiveBayes
    >>> X = np.array([[1, 1]] + [[1, 0]] * 4 + [[0, 1]] * 4 + [[0, 0]] * 4)
    >>> y = np.array([1] + [2] * 12)
    >>> model = NaiveBayes("bernoulli", alpha=0).fit(X, y)
    >>> print(f"{model.predict_proba([[1, 1]])[0, 0]:.6f}")  # 3/7
    0.428571
    """

    _parameter_constraints: ClassVar[dict] = {
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "var_smoothing": [Interval(Real, 0, None, closed="left")],
        **BAYES_PARAMETER_CONSTRAINTS,
        "variance_prior_dof": [Interval(Real, 2, None, closed="neither")],
        "beta_prior": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        likelihood="gaussian",
        alpha=1.0,
        var_smoothing=1e-9,
        class_prior=None,
        dirichlet_concentration=1.0,
        mean_prior_count=0.01,
        variance_prior_dof=3.0,
        beta_prior=1.0,
    ):
        self.likelihood = likelihood
        self.alpha = alpha
        self.var_smoothing = var_smoothing
        self.class_prior = class_prior
        self.dirichlet_concentration = dirichlet_concentration
        self.mean_prior_count = mean_prior_count
        self.variance_prior_dof = variance_prior_dof
        self.beta_prior = beta_prior

    def fit(self, X, y, sample_weight=None):
        """Fit class priors and per-class feature distributions by maximum likelihood.

        Parameters
        ----------
        X, y : features (only 0 and 1 for ``likelihood="bernoulli"``) and labels.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; an integer weight is the same as repeating the row.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For bad input; non-binary X with ``likelihood="bernoulli"``; a zero
            Gaussian variance (a class with one sample or a feature constant
            within a class, with ``var_smoothing=0``; or every feature constant).
        """
        self._validate_params()
        data = self._check_fit_data(validate_fit_data(self, X, y, sample_weight))
        self.classes_ = data.classes
        moments = ClassMoments.from_data(data)
        self.class_prior_ = resolve_class_prior(self.class_prior, data.classes, moments.counts)
        for stale in ("means_", "variances_", "feature_prob_"):
            if hasattr(self, stale):
                delattr(self, stale)
        if self.likelihood == "gaussian":
            self._fit_gaussian(data, moments)
        else:
            counts = _feature_counts(data)
            self.feature_prob_ = (counts + self.alpha) / (moments.counts[:, None] + 2 * self.alpha)
        self._store_posterior(data)
        return self

    def _fit_gaussian(self, data: FitData, moments: ClassMoments) -> None:
        _, variance = weighted_mean_variance(data.X, data.sample_weight)
        epsilon = self.var_smoothing * variance.max()
        variances = moments.class_sum_squares(data.y) / moments.counts[:, None] + epsilon
        if np.any(variances == 0):
            classes = data.classes[(variances == 0).any(axis=1)].tolist()
            raise ValueError(
                f"Gaussian Naive Bayes needs a positive variance for every class and "
                f"feature, but classes {classes} have a feature with no spread (a class "
                "with one sample, or a feature constant within the class) and "
                f"var_smoothing={self.var_smoothing} adds nothing. Use var_smoothing > 0 "
                "(the default 1e-9 works unless every feature is constant), or drop "
                "constant columns."
            )
        self.means_ = moments.means
        self.variances_ = variances

    def _check_fit_data(self, data: FitData) -> FitData:
        if self.likelihood == "bernoulli":
            _check_binary(data.X)
        return data

    # -- prediction ------------------------------------------------------------
    def _joint_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        """:math:`\\log \\pi_k + \\sum_j \\log p(x_j \\mid y = k)`, shape (n, K).

        Raises
        ------
        ValueError
            For a sample that has probability zero under every class: with Gaussian
            features, one so far from every class (in class standard deviations) that
            every class density underflows; with Bernoulli features and ``alpha=0``,
            a feature value never seen in any class.
        """
        if self.likelihood == "gaussian":
            # A distance that overflows is a density that underflows: reported below.
            with np.errstate(over="ignore"):
                squared = (X[:, None, :] - self.means_) ** 2 / self.variances_
            log_density = -0.5 * np.sum(np.log(2 * np.pi * self.variances_) + squared, axis=2)
        else:
            _check_binary(X)
            log_density = bernoulli_log_density(X, self.feature_prob_)
        joint = log_density + np.log(self.class_prior_)
        impossible = np.flatnonzero(np.all(np.isneginf(joint), axis=1))
        if len(impossible):
            if self.likelihood == "gaussian":
                raise ValueError(
                    f"Samples {impossible.tolist()[:10]} have probability zero under every "
                    "class: their features are so far from every class mean, in units of "
                    "the class standard deviations, that every class density underflows, so "
                    "p(y | x) is undefined. Check these rows for wrong units or typing "
                    "errors, or rescale the features; a larger var_smoothing also widens "
                    "the classes."
                )
            raise ValueError(
                f"Samples {impossible.tolist()[:10]} have probability zero under every "
                f"class (alpha={self.alpha}: a feature value never seen in any class), so "
                "p(y | x) is undefined. Use alpha > 0."
            )
        return joint

    def predict_log_proba(self, X):
        """Log class probabilities, shape (n_samples, n_classes), computed in log space.

        Raises
        ------
        ValueError
            For values of X that are NaN, infinite or beyond ``MAX_ABS_FEATURE``
            (1e150) in magnitude, naming their columns; for samples that are
            impossible under every class.
        """
        X = validate_predict_data(self, X)
        return log_softmax(self._joint_log_likelihood(X))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Most probable class label for each sample."""
        best = np.argmax(self.predict_log_proba(X), axis=1)
        return self.classes_[best]

    # -- Bayesian version --------------------------------------------------------
    def _conjugate_posterior(self, data: FitData) -> GenerativePosterior:
        moments = ClassMoments.from_data(data)
        if self.likelihood == "gaussian":
            grand_mean, variance = centre_and_spread(self, data)
            dof = self.variance_prior_dof
            conditional = NormalInverseGammaPosterior.from_moments(
                moments,
                data.y,
                prior_mean=grand_mean,
                prior_kappa=self.mean_prior_count,
                prior_shape=dof / 2,
                prior_rate=(dof - 2) * variance / 2,
            )
        else:
            conditional = BetaPosterior.from_counts(
                _feature_counts(data), moments.counts, self.beta_prior
            )
        return GenerativePosterior(self._class_prior_posterior(data, moments.counts), conditional)


def _feature_counts(data: FitData) -> np.ndarray:
    """Weighted number of ones per class and feature, shape (n_classes, n_features)."""
    one_hot = np.eye(data.n_classes)[data.y] * data.sample_weight[:, None]
    return one_hot.T @ data.X


def _check_binary(X: np.ndarray) -> None:
    if not np.all((X == 0) | (X == 1)):
        raise ValueError(
            "likelihood='bernoulli' needs binary features (only 0 and 1); X has other "
            "values. Binarise the features first (e.g. sklearn.preprocessing.Binarizer)."
        )
