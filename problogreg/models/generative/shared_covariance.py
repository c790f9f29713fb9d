r"""SharedCovarianceGaussian: class-conditional Gaussians with one shared covariance (LDA).

With :math:`x \mid y = k \sim N(\mu_k, \Sigma)` and :math:`p(y = k) = \pi_k`,

.. math::

    \log p(y = k \mid x) = x^\top \Sigma^{-1}\mu_k
    - \tfrac12 \mu_k^\top \Sigma^{-1} \mu_k + \log \pi_k - \operatorname{logsumexp}(\cdot),

exactly a softmax (for two classes, logistic) model with weights
:math:`w_k = \Sigma^{-1}\mu_k` and intercepts :math:`b_k = -\tfrac12 \mu_k^\top
\Sigma^{-1} \mu_k + \log \pi_k`; it is the same p(y|x) as logistic regression,
fitted generatively.
"""

from __future__ import annotations

import warnings
from numbers import Real
from typing import ClassVar

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ...core.numerics import log_softmax
from ...core.validation import FitData, feature_names, validate_fit_data, validate_predict_data
from .._linear import LinearLogitClassifierMixin
from ._base import (
    BAYES_PARAMETER_CONSTRAINTS,
    GenerativeBayesMixin,
    centre_and_spread,
    resolve_class_prior,
)
from ._conjugate import GenerativePosterior, NormalInverseWishartPosterior
from ._statistics import ClassMoments, ledoit_wolf_shrinkage

#: Eigenvalues of the within-class correlation matrix below this fraction of the largest
#: are dropped by the pseudo-inverse (scikit-learn's svd solver drops singular values
#: of the standardised residuals below 1e-4, eigenvalues below 1e-8).
PSEUDO_INVERSE_TOLERANCE = 1e-8


class RankDeficientCovarianceWarning(UserWarning):
    """The pooled within-class covariance is singular; its pseudo-inverse is used."""


class SharedCovarianceGaussian(
    GenerativeBayesMixin, LinearLogitClassifierMixin, ClassifierMixin, BaseEstimator
):
    r"""Gaussian classes with one shared covariance (linear discriminant analysis).

    The fit is maximum likelihood: class priors :math:`N_k / N` (or
    ``class_prior``), class means :math:`\bar x_k` and the pooled covariance
    :math:`\Sigma = \sum_k (N_k / N) S_k = \frac1N \sum_i s_i (x_i - \bar
    x_{y_i})(x_i - \bar x_{y_i})^\top`, with :math:`S_k` the biased class
    covariance, then optionally shrunk,
    :math:`(1 - \lambda)\Sigma + \lambda \frac{\operatorname{tr}\Sigma}{d} I`.

    :meth:`sample_posterior` and :meth:`loo` use the conjugate Bayesian version
    instead: :math:`\pi \sim \text{Dirichlet}(\alpha_0)`,
    :math:`\Sigma \sim IW(\Psi_0, \nu_0)`, :math:`\mu_k \mid \Sigma \sim
    N(m_0, \Sigma / \kappa_0)`. The defaults are weakly informative and scaled
    to the data: :math:`m_0` is the grand mean of X, :math:`\Psi_0 = (\nu_0 - d
    - 1)\operatorname{diag}(\operatorname{var} x_j)` so that the prior mean of
    :math:`\Sigma` is the diagonal of the marginal (not within-class) feature
    variances, :math:`\nu_0 = d + 2` (the fewest degrees of freedom with a
    finite prior mean), :math:`\kappa_0 = 0.01` (each class mean is a priori
    within about 10 within-class sd of the grand mean) and :math:`\alpha_0 = 1`
    (uniform on the simplex). The prior takes the role of ``shrinkage``, which
    the Bayesian version ignores.

    Parameters
    ----------
    shrinkage : None, "auto" or float in [0, 1], default=None
        None: the ML covariance. A float :math:`\lambda`: shrink towards
        :math:`(\operatorname{tr}\Sigma / d) I` (the same as scikit-learn's
        ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage=λ)``). "auto": the
        Ledoit-Wolf intensity of the pooled within-class residuals after
        standardising each feature, shrinking the correlation matrix towards I,
        i.e. :math:`\Sigma_\lambda = (1-\lambda)\Sigma + \lambda\,\mathrm{diag}(\Sigma)`,
        so the result does not depend on the units of the features
        (scikit-learn's "auto" does the same class by class).
    class_prior : array-like of shape (n_classes,), default=None
        Fixed class probabilities (in ``classes_`` order); None estimates them
        (frequencies for the fit, a Dirichlet posterior for the Bayesian version).
    dirichlet_concentration : float, default=1.0
        :math:`\alpha_0`, the Dirichlet prior of the class probabilities.
    mean_prior_count : float, default=0.01
        :math:`\kappa_0`: the prior of each class mean is worth this many samples.
    covariance_prior_dof : float or None, default=None
        :math:`\nu_0 > d + 1`; None means :math:`d + 2`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    class_prior_ : ndarray of shape (n_classes,)
    means_ : ndarray of shape (n_classes, n_features)
    covariance_ : ndarray of shape (n_features, n_features)
        The shared covariance, after shrinkage.
    shrinkage_ : float
        The shrinkage intensity used (0 without shrinkage).
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Implied logistic weights: binary :math:`\Sigma^{-1}(\mu_1 - \mu_0)`,
        multiclass :math:`\Sigma^{-1}\mu_k` (the layout of MAPLogisticRegression).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Binary :math:`b_1 - b_0 = -\tfrac12\mu_1^\top\Sigma^{-1}\mu_1 +
        \tfrac12\mu_0^\top\Sigma^{-1}\mu_0 + \ln(\pi_1/\pi_0)`, multiclass :math:`b_k`.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X was a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from problogreg import SharedCovarianceGaussian
    >>> X = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, 2.0], [3.0, 2.5], [0.5, 0.0], [2.5, 3.0]])
    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> model = SharedCovarianceGaussian().fit(X, y)
    >>> model.coef_.shape, model.intercept_.shape
    ((1, 2), (1,))
    """

    _parameter_constraints: ClassVar[dict] = {
        "shrinkage": [None, StrOptions({"auto"}), Interval(Real, 0, 1, closed="both")],
        **BAYES_PARAMETER_CONSTRAINTS,
        "covariance_prior_dof": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        shrinkage=None,
        class_prior=None,
        dirichlet_concentration=1.0,
        mean_prior_count=0.01,
        covariance_prior_dof=None,
    ):
        self.shrinkage = shrinkage
        self.class_prior = class_prior
        self.dirichlet_concentration = dirichlet_concentration
        self.mean_prior_count = mean_prior_count
        self.covariance_prior_dof = covariance_prior_dof

    def fit(self, X, y, sample_weight=None):
        """Fit class priors, means and the pooled covariance by maximum likelihood.

        Parameters
        ----------
        X, y, sample_weight : the training data (weights as repeated rows), as for
            :meth:`NaiveBayes.fit`.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For bad input, or when every feature is constant within its classes.

        Warns
        -----
        RankDeficientCovarianceWarning
            When the pooled covariance is singular (constant or collinear
            columns, or more features than samples) and not shrunk: the
            discriminant then uses its pseudo-inverse in the span of the data,
            as scikit-learn's svd solver. Singularity is judged on the correlation
            matrix of the pooled covariance, so it does not depend on the units of
            the features: spreads 1e8 apart are fine.
        """
        self._validate_params()
        data = validate_fit_data(self, X, y, sample_weight)
        self.classes_ = data.classes
        moments = ClassMoments.from_data(data)
        self.class_prior_ = resolve_class_prior(self.class_prior, data.classes, moments.counts)
        self.means_ = moments.means
        covariance = moments.pooled_scatter() / moments.total
        self.shrinkage_ = self._shrinkage_intensity(moments, covariance)
        if self.shrinkage == "auto":
            target = np.diag(np.diag(covariance))
        else:
            target = np.trace(covariance) / len(covariance) * np.eye(len(covariance))
        self.covariance_ = (1 - self.shrinkage_) * covariance + self.shrinkage_ * target
        factor = self._factor_covariance(data)
        self.coef_, self.intercept_ = self._implied_logistic(factor)
        self._store_posterior(data)
        return self

    def _shrinkage_intensity(self, moments: ClassMoments, covariance: np.ndarray) -> float:
        if self.shrinkage is None:
            return 0.0
        if self.shrinkage == "auto":
            sd = np.sqrt(np.diag(covariance))
            standardised = moments.residuals / np.where(sd > 0, sd, 1.0)
            return ledoit_wolf_shrinkage(standardised, moments.sample_weight)
        return float(self.shrinkage)

    def _factor_covariance(self, data: FitData):
        """``(sd, solve)`` with ``covariance_ = diag(sd) R diag(sd)`` and ``solve(b)`` the
        solution of ``R x = b``: by Cholesky, or, when R is singular, by its
        pseudo-inverse (with a :class:`RankDeficientCovarianceWarning`).

        Singularity is judged on the correlation matrix R, so it does not depend on
        the units of the features: spreads that differ by 1e8 or more are fine, while
        constant or (nearly) collinear columns, or fewer samples than features, make
        R singular. Then, as scikit-learn's ``LinearDiscriminantAnalysis(solver="svd")``,
        the discriminant lives in the span of the within-class data: R's eigenvalues
        below :data:`PSEUDO_INVERSE_TOLERANCE` are dropped (a constant feature gets
        weight 0).
        """
        n_features = len(self.covariance_)
        sd = np.sqrt(np.diag(self.covariance_))
        if not np.any(sd > 0):
            raise ValueError(
                "The shared within-class covariance is zero: every feature is constant "
                "within its classes, so the Gaussian class model has no discriminant. "
                "Drop these features."
            )
        unit = np.where(sd > 0, sd, 1.0)
        correlation = self.covariance_ / np.outer(unit, unit)
        eigenvalues, eigenvectors = np.linalg.eigh(correlation)
        if eigenvalues[0] > eigenvalues[-1] * n_features * np.finfo(float).eps:
            factor = linalg.cho_factor(correlation, lower=True)
            return unit, lambda b: linalg.cho_solve(factor, b)
        kept = eigenvalues > PSEUDO_INVERSE_TOLERANCE * eigenvalues[-1]
        basis = eigenvectors[:, kept] / np.sqrt(eigenvalues[kept])
        warnings.warn(
            self._singular_message(data, sd, int(kept.sum())),
            RankDeficientCovarianceWarning,
            stacklevel=3,
        )
        return unit, lambda b: basis @ (basis.T @ b)

    def _singular_message(self, data: FitData, sd: np.ndarray, rank: int) -> str:
        """Why the pooled covariance is singular, and what the fit does about it."""
        n_features = len(sd)
        names = feature_names(self)
        constant = [n for n, v in zip(names, sd, strict=True) if v == 0]
        n_used = np.count_nonzero(data.sample_weight > 0)
        reasons = []
        if constant:
            reasons.append(f"features {constant} do not vary within any class")
        if n_used - data.n_classes < n_features:
            reasons.append(
                f"{n_used} samples in {data.n_classes} classes give the pooled covariance "
                f"rank at most {n_used - data.n_classes}, below its {n_features} features"
            )
        if not reasons:
            reasons.append("some features are (nearly) linearly dependent")
        return (
            f"The shared within-class covariance is singular ({'; '.join(reasons)}): the "
            f"discriminant uses its pseudo-inverse in the span of the data (rank {rank} of "
            f"{n_features}), as scikit-learn's LDA with solver='svd' does. For a full-rank "
            "covariance set shrinkage='auto' (Ledoit-Wolf) or a value in (0, 1], or drop "
            "the redundant columns."
        )

    def _implied_logistic(self, factor):
        unit, solve = factor
        # Sigma^{-1} mu_k = D^{-1} R^{-1} D^{-1} mu_k, with D = diag(sd): every solve is
        # on the unit-free correlation matrix (R^+ for a singular one).
        solved = solve((self.means_ / unit).T).T / unit
        intercept = -0.5 * np.sum(solved * self.means_, axis=1) + np.log(self.class_prior_)
        if len(self.classes_) == 2:
            return (solved[1] - solved[0])[None, :], np.array([intercept[1] - intercept[0]])
        return solved, intercept

    # -- prediction ------------------------------------------------------------
    def _checked_logits(self, X) -> np.ndarray:
        X = validate_predict_data(self, X)
        with np.errstate(over="ignore", invalid="ignore"):
            logits = self._class_logits(X)
        overflow = np.flatnonzero(~np.all(np.isfinite(logits), axis=1))
        if len(overflow):
            raise ValueError(
                f"Samples {overflow.tolist()[:10]} are so far from the training data that "
                "their class logits overflow, so p(y | x) cannot be computed. Check these "
                "rows for wrong units or typing errors, or rescale the features."
            )
        return logits

    def decision_function(self, X):
        """Log-odds of ``classes_[1]`` (binary, shape (n,)) or class logits (n, K).

        Raises
        ------
        ValueError
            For values of X that are NaN, infinite or beyond ``MAX_ABS_FEATURE``
            (1e150) in magnitude, naming their columns, or whose logits overflow.
        """
        logits = self._checked_logits(X)
        return logits[:, 1] if len(self.classes_) == 2 else logits

    def predict_log_proba(self, X):
        """Log class probabilities, shape (n_samples, n_classes), by log-sum-exp.

        Raises
        ------
        ValueError
            As :meth:`decision_function`.
        """
        return log_softmax(self._checked_logits(X))

    def _conjugate_posterior(self, data: FitData) -> GenerativePosterior:
        moments = ClassMoments.from_data(data)
        grand_mean, variance = centre_and_spread(self, data)
        n_features = data.X.shape[1]
        dof = n_features + 2 if self.covariance_prior_dof is None else self.covariance_prior_dof
        if dof <= n_features + 1:
            raise ValueError(
                f"covariance_prior_dof must exceed n_features + 1 = {n_features + 1} so "
                f"that the prior covariance has a mean; got {dof}."
            )
        conditional = NormalInverseWishartPosterior.from_moments(
            moments,
            prior_mean=grand_mean,
            prior_kappa=self.mean_prior_count,
            prior_scale=np.diag((dof - n_features - 1) * variance),
            prior_dof=dof,
        )
        return GenerativePosterior(self._class_prior_posterior(data, moments.counts), conditional)
