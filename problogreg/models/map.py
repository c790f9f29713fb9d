r"""MAPLogisticRegression: the posterior mode (or the MLE) by Newton's method.

The fit maximises

.. math::

    \log p(\theta \mid X, y) = \sum_i s_i \log p(y_i \mid x_i, \theta)
    + \sum_j \log \mathcal N(\theta_j; 0, \sigma_j) + \text{const},

i.e. L2-penalised (multinomial) logistic regression with penalty
:math:`\tfrac12 \sum_j \theta_j^2 / \sigma_j^2`; with every prior flat it is
the maximum-likelihood estimate. The outcome is a public
:class:`~problogreg.core.result.MAPResult` (``result_``) that the Laplace and
NUTS estimators and the evaluation layer build on.
"""

from __future__ import annotations

import dataclasses
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..core.result import MAPResult
from ..core.validation import check_probability, feature_names
from ..posterior.draws import normal_interval
from ..posterior.gaussian import laplace_posterior
from ._binomial import binomial_rows
from ._linear import LinearLogitClassifierMixin
from ._marginal_effects import MarginalEffectsMixin, delta_method_table
from ._mode import SeparationError, SeparationWarning, mode_finder

__all__ = ["MAPLogisticRegression", "SeparationError", "SeparationWarning"]

PRIOR_PARAMETER_CONSTRAINTS = {
    "prior_scale": [Interval(Real, 0, None, closed="neither"), "array-like", None],
    "intercept_prior_scale": [Interval(Real, 0, None, closed="neither"), None],
    "autoscale": ["boolean"],
    "multiclass": [StrOptions({"auto", "symmetric", "reference"})],
}


class MAPLogisticRegression(
    MarginalEffectsMixin, LinearLogitClassifierMixin, ClassifierMixin, BaseEstimator
):
    """Logistic regression with a Gaussian prior, fitted at the posterior mode.

    Parameters
    ----------
    prior : {"normal", "jeffreys"}, default="normal"
        "normal": independent Normal(0, s) priors with the scales below (None:
        flat, maximum likelihood). "jeffreys": the Jeffreys prior
        :math:`|I(\theta)|^{1/2}` on all parameters, whose mode is Firth's
        bias-reduced estimate (R's logistf and brglm2): finite even for separable
        classes, with less small-sample bias than the MLE. The scales below are
        then not used, multiclass models use the reference parametrisation (the
        multinomial generalisation, as brglm2's ``brmultinom``), ``hessian_`` is
        the Fisher information at the estimate and ``summary()`` reports the
        standard errors from its inverse, as brglm2 does.
    prior_scale : float, array of shape (n_features,) or None, default=2.5
        Standard deviation of the Normal(0, s) prior on each coefficient. None
        (or ``inf`` entries) means a flat prior: maximum likelihood.
    intercept_prior_scale : float or None, default=10.0
        Standard deviation of the Normal(0, s) prior on each intercept; None is flat.
    autoscale : bool, default=True
        Use ``prior_scale / std(x_j)`` for coefficient j (the rstanarm
        convention), so the prior is weakly informative in any units.
    multiclass : {"auto", "symmetric", "reference"}, default="auto"
        Parametrisation for more than two classes. "symmetric": one row per
        class, identified by the prior (intercepts sum to zero when their prior
        is flat). "reference": ``classes_[0]`` is fixed at zero (needed for
        MLE). "auto": symmetric when the coefficient prior is proper.
    solver : {"auto", "newton", "lbfgs"}, default="auto"
        "newton": damped Newton with Cholesky steps. "lbfgs": Hessian-free
        (then ``hessian_`` is None). "auto": Newton, with an L-BFGS warm start
        for multiclass; for two classes with at least 512 samples per
        parameter, the first Newton steps use the Hessian of a random eighth
        of the samples (the last steps, the convergence test and ``hessian_``
        use all of them; see :mod:`problogreg.core.minimize`); L-BFGS alone when the
        dense Hessian would not fit in memory. When rounding defeats a Newton
        step, L-BFGS continues from there. With more features than samples
        (and a proper prior on every coefficient) Newton's steps solve in the
        dual, n-dimensional space (Woodbury's identity), for "newton" and
        "auto" alike; when both forms of the Hessian are costly (many samples
        and features, or sparse X) "auto" takes Newton-CG steps (conjugate
        gradients on Hessian-vector products) with the same convergence test.
        :func:`problogreg.core.hessian_form.hessian_form` states the rule; after
        Newton-CG steps the exact Hessian is formed when first needed.
    tol : float, default=1e-8
        Convergence tolerance on the gradient and the Newton decrement,
        relative to the total sample weight.
    max_iter : int, default=100

    Attributes
    ----------
    result_ : MAPResult
        The mode in free coordinates, the Hessian and its Cholesky factor, the
        :class:`~problogreg.core.layout.ParameterLayout` and the convergence
        record: everything the other attributes are read from.
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    hessian_ : ndarray of shape (n_params, n_params) or None
        (None on the L-BFGS path, in dual form, where ``result_.woodbury`` holds it, and
        when no exact form fits in memory. After Newton-CG steps it is formed on first
        access of ``hessian_``, ``result_`` or ``summary()``.)
        Hessian of the penalised negative log-posterior at the optimum, over the
        free parameters, intercepts first (for the symmetric model with a flat
        intercept prior the free intercepts are K-1 orthonormal contrasts).
    n_iter_ : int
        Solver iterations: Newton steps, with or without a subsampled Hessian,
        plus L-BFGS iterations when it ran. For Dask data, the steps on all rows
        after the warm start (a fit to a sample of them).
    converged_ : bool
    log_likelihood_ : float
        Weighted log-likelihood at the optimum.
    log_posterior_ : float
        ``log_likelihood_`` plus the normalised log prior density of the
        parameters with a proper prior (absent when every prior is flat); with the
        Jeffreys prior, the penalised log-likelihood
        :math:`\\ell + \tfrac12\\log|I(\\hat\theta)|`.
    prior_scale_ : ndarray of shape (n_features,)
        Resolved coefficient prior sd (after autoscale; ``inf`` = flat).
    intercept_prior_scale_ : float
    multiclass_ : {"binary", "symmetric", "reference"}
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X was a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from problogreg import MAPLogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([0, 1, 0, 1])
    >>> model = MAPLogisticRegression().fit(X, y)
    >>> model.predict_proba(X).shape
    (4, 2)
    >>> model.result_.layout.n_free
    2
    """

    _parameter_constraints: ClassVar[dict] = {
        "prior": [StrOptions({"normal", "jeffreys"})],
        **PRIOR_PARAMETER_CONSTRAINTS,
        "solver": [StrOptions({"auto", "newton", "lbfgs"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        prior="normal",
        prior_scale=2.5,
        intercept_prior_scale=10.0,
        autoscale=True,
        multiclass="auto",
        solver="auto",
        tol=1e-8,
        max_iter=100,
    ):
        self.prior = prior
        self.prior_scale = prior_scale
        self.intercept_prior_scale = intercept_prior_scale
        self.autoscale = autoscale
        self.multiclass = multiclass
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def fit(self, X, y, sample_weight=None, trials=None):
        """Fit the posterior mode.

        Parameters
        ----------
        X : array-like, DataFrame or scipy.sparse matrix/array of shape (n_samples, n_features)
            Sparse input is kept sparse (CSR) throughout: products with X, the
            ``autoscale`` sds without centring, Hessians as sparse Gram products.
        y : array-like of shape (n_samples,)
            Class labels of any hashable type; with ``trials``, the number of successes.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; an integer weight is the same as repeating the row.
        trials : array-like of shape (n_samples,), optional
            Grouped binomial data: row i had ``y[i]`` successes in ``trials[i]``
            trials, fitted with the exact binomial likelihood (classes 0 = failure
            and 1 = success; see :mod:`problogreg.models._binomial`).

        Returns
        -------
        self

        Raises
        ------
        SeparationError
            With a flat prior on separable data (the MLE is infinite).

        Warns
        -----
        SeparationWarning
            With a flat prior when fitted probabilities are numerically 0 or 1 but
            the data are not separable (or too large for the exact check).
        ValueError
            For bad input, or constant/collinear columns under a flat prior.
        """
        self._validate_params()
        X, y, sample_weight, groups = binomial_rows(X, y, sample_weight, trials)
        finder = self._mode_finder(X, y, sample_weight)
        self._store_result(finder.solve(), groups)
        # Newton-CG keeps no Hessian: it is formed at the mode on first use (standard errors,
        # hessian_), not as part of every fit.
        self._hessian_finder = finder if self._result.needs_hessian else None
        return self

    @property
    def result_(self) -> MAPResult:
        """The fit (see the class docstring), its exact Hessian formed on first access when
        the solver took Newton-CG steps."""
        finder = getattr(self, "_hessian_finder", None)
        if finder is not None:
            self._result = finder.complete_hessian(self._result)
            self._hessian_finder = None
        return self._result

    @property
    def hessian_(self):
        return self.result_.hessian

    def __getstate__(self):
        # A pickled fit carries its Hessian, not the training data needed to form it.
        self.result_  # noqa: B018 (forms the Hessian)
        return super().__getstate__()

    def _mode_finder(self, X, y, sample_weight):
        return mode_finder(
            self,
            X,
            y,
            sample_weight,
            solver=self.solver,
            tol=self.tol,
            max_iter=self.max_iter,
            prior=self.prior,
        )

    def _store_result(self, result: MAPResult, groups=None) -> None:
        """Store a fit; binomial groups add their log binomial coefficients to the
        log-likelihood (and so to the log posterior and the evidence)."""
        self.binomial_ = groups is not None
        if groups is not None:
            result = dataclasses.replace(
                result, log_likelihood=result.log_likelihood + groups.log_likelihood_constant
            )
        self._result = result
        self._hessian_finder = None
        intercept, coef = result.layout.estimator_rows(result.theta)
        self.intercept_, self.coef_ = intercept.copy(), coef.copy()
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.prior_scale_ = result.prior.coef_scale
        self.intercept_prior_scale_ = result.prior.intercept_scale
        self.log_likelihood_ = result.log_likelihood
        if np.isfinite(result.prior_scale).any() or result.prior.jeffreys:
            self.log_posterior_ = result.log_posterior
        elif hasattr(self, "log_posterior_"):
            del self.log_posterior_

    def summary(self, ci_prob: float = 0.95, exponentiate: bool = False) -> pd.DataFrame:
        """Coefficient table: estimate, standard error, z, p-value and interval.

        Standard errors come from the inverse Hessian of the penalised negative
        log-posterior at the optimum (the Laplace posterior sd; the usual
        asymptotic standard errors for MLE). ``z = estimate / std_error``,
        ``p_value = 2 Phi(-|z|)`` and the interval is
        ``estimate +- Phi^{-1}((1 + ci_prob) / 2) * std_error``.

        Parameters
        ----------
        ci_prob : float, default=0.95
        exponentiate : bool, default=False
            Report odds ratios: ``odds_ratio = exp(estimate)`` and the interval's
            ends exponentiated (``exp`` is monotone, so they are the interval of the
            odds ratio; an sd of the odds ratio is not reported, as it would describe
            a skewed quantity). ``z`` and ``p_value`` test the log odds ratio = 0.

        Returns
        -------
        DataFrame indexed by (class, term); the reference class of a
        reference-parametrised model is omitted (its parameters are fixed at 0).
        """
        check_is_fitted(self)
        ci_prob = check_probability(ci_prob, "ci_prob")
        layout = self.result_.layout
        estimate = self.result_.theta
        # The map to likelihood coordinates is the identity unless intercepts are contrasts.
        transform = layout.jacobian() if layout.sum_to_zero else None
        std_error = laplace_posterior(self.result_).marginal_sd(transform)
        z = estimate / std_error
        lower, upper = normal_interval(estimate, std_error, ci_prob)
        columns = {
            "estimate": estimate,
            "std_error": std_error,
            "z": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
            "ci_lower": lower,
            "ci_upper": upper,
        }
        table = self._coefficient_frame(columns)
        if exponentiate:
            table = exponentiated(table)
        table.attrs["ci_prob"] = ci_prob
        return table

    def _coefficient_frame(self, columns: dict) -> pd.DataFrame:
        """Per-parameter columns (in likelihood coordinates) indexed by (class, term), the
        reference class of a reference-parametrised model left out."""
        row_classes = self.result_.layout.row_classes(self.classes_)
        names = feature_names(self)
        terms = ["intercept"] * len(row_classes) + names * len(row_classes)
        classes = row_classes + [c for c in row_classes for _ in names]
        table = pd.DataFrame(
            columns, index=pd.MultiIndex.from_arrays([classes, terms], names=["class", "term"])
        )
        order = np.argsort([row_classes.index(c) for c in classes], kind="stable")
        return table.iloc[order]

    def odds_ratios(self, ci_prob: float = 0.95) -> pd.DataFrame:
        """``summary(ci_prob, exponentiate=True)``: odds ratios with their intervals."""
        return self.summary(ci_prob, exponentiate=True)

    def _effect_table(self, contrasts, ci_prob=0.95):
        check_is_fitted(self)
        return delta_method_table(self.result_, self.classes_, contrasts, ci_prob)


def exponentiated(table: pd.DataFrame) -> pd.DataFrame:
    """A Wald coefficient table on the odds-ratio scale: the estimate and the interval's
    ends exponentiated, the sd left out (it belongs to the log scale)."""
    return pd.DataFrame(
        {
            "odds_ratio": np.exp(table["estimate"]),
            "z": table["z"],
            "p_value": table["p_value"],
            "ci_lower": np.exp(table["ci_lower"]),
            "ci_upper": np.exp(table["ci_upper"]),
        },
        index=table.index,
    )
