"""MAPLogisticRegression: the posterior mode (or the MLE) by Newton's method.

The fit maximises

.. math::

    \\log p(\\theta \\mid X, y) = \\sum_i s_i \\log p(y_i \\mid x_i, \\theta)
    + \\sum_j \\log \\mathcal N(\\theta_j; 0, \\sigma_j) + \\text{const},

i.e. L2-penalised (multinomial) logistic regression with penalty
:math:`\\tfrac12 \\sum_j \\theta_j^2 / \\sigma_j^2`; with every prior flat it is
the maximum-likelihood estimate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import linalg, stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._validation import (
    FitData,
    feature_names,
    format_label,
    validate_fit_data,
    validate_predict_data,
)
from .likelihood import SoftmaxLikelihood, class_logits, log_proba_from_logits
from .newton import SingularHessianError, minimize, warn_not_converged
from .objective import PosteriorObjective
from .priors import ResolvedPrior, log_normal_density, resolve_prior
from .separation import find_separation, separation_check_fits

#: A fitted probability of the observed class this close to 1 makes an MLE suspect.
SEPARATION_SUSPICION = 1e-7


class SeparationError(ValueError):
    """The maximum-likelihood estimate does not exist: the classes are separable."""


class LinearLogitClassifierMixin:
    """Predictions of any model whose class logits are ``X @ coef_.T + intercept_``.

    For two classes ``coef_`` has one row (the logit of ``classes_[1]``
    against ``classes_[0]``); otherwise one row per class.
    """

    def _class_logits(self, X: np.ndarray) -> np.ndarray:
        eta = X @ self.coef_.T + self.intercept_
        return class_logits(eta, reference=len(self.classes_) == 2)

    def decision_function(self, X):
        """Log-odds of ``classes_[1]`` (binary, shape (n,)) or class logits (n, K)."""
        X = validate_predict_data(self, X)
        logits = self._class_logits(X)
        return logits[:, 1] if len(self.classes_) == 2 else logits

    def predict_log_proba(self, X):
        """Log class probabilities, shape (n_samples, n_classes), by log-sum-exp."""
        return log_proba_from_logits(self._class_logits(validate_predict_data(self, X)))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Most probable class label for each sample."""
        # Predict first: it checks that the model is fitted before classes_ is read.
        log_proba = self.predict_log_proba(X)
        return self.classes_[np.argmax(log_proba, axis=1)]


_PRIOR_PARAMETER_CONSTRAINTS = {
    "prior_scale": [Interval(Real, 0, None, closed="neither"), "array-like", None],
    "intercept_prior_scale": [Interval(Real, 0, None, closed="neither"), None],
    "autoscale": ["boolean"],
    "multiclass": [StrOptions({"auto", "symmetric", "reference"})],
}


@dataclass
class MAPFit:
    """Everything a fit produces that the Laplace and PyMC estimators build on."""

    data: FitData
    prior: ResolvedPrior
    objective: PosteriorObjective
    params: np.ndarray
    hessian: np.ndarray | None
    cholesky: np.ndarray | None
    n_iter: int
    converged: bool


class MAPLogisticRegression(LinearLogitClassifierMixin, ClassifierMixin, BaseEstimator):
    """Logistic regression with a Gaussian prior, fitted at the posterior mode.

    Parameters
    ----------
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
        use all of them; see :mod:`problogreg.newton`); L-BFGS alone when the
        dense Hessian would not fit in memory.
    tol : float, default=1e-8
        Convergence tolerance on the gradient and the Newton decrement,
        relative to the total sample weight.
    max_iter : int, default=100

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    hessian_ : ndarray of shape (n_params, n_params) or None
        Hessian of the penalised negative log-posterior at the optimum, over the
        free parameters, intercepts first (for the symmetric model with a flat
        intercept prior the free intercepts are K-1 orthonormal contrasts).
    n_iter_ : int
        Solver iterations: Newton steps, with or without a subsampled Hessian,
        plus L-BFGS iterations when it ran.
    converged_ : bool
    log_likelihood_ : float
        Weighted log-likelihood at the optimum.
    log_posterior_ : float
        ``log_likelihood_`` plus the normalised log prior density of the
        parameters with a proper prior (absent when every prior is flat).
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
    """

    _parameter_constraints: ClassVar[dict] = {
        **_PRIOR_PARAMETER_CONSTRAINTS,
        "solver": [StrOptions({"auto", "newton", "lbfgs"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        prior_scale=2.5,
        intercept_prior_scale=10.0,
        autoscale=True,
        multiclass="auto",
        solver="auto",
        tol=1e-8,
        max_iter=100,
    ):
        self.prior_scale = prior_scale
        self.intercept_prior_scale = intercept_prior_scale
        self.autoscale = autoscale
        self.multiclass = multiclass
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X, y, sample_weight=None):
        """Fit the posterior mode.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; an integer weight is the same as repeating the row.

        Returns
        -------
        self

        Raises
        ------
        SeparationError
            With a flat prior on separable data (the MLE is infinite).
        ValueError
            For bad input, or constant/collinear columns under a flat prior.
        """
        self._validate_params()
        fit = self._fit_map(X, y, sample_weight)
        self._store_map_fit(fit)
        return self

    # -- the fit, shared by the estimators built on this one ---------------
    def _fit_map(self, X, y, sample_weight) -> MAPFit:
        data = validate_fit_data(self, X, y, sample_weight)
        self.classes_ = data.classes
        prior = resolve_prior(
            self.prior_scale, self.intercept_prior_scale, self.autoscale, data.X, data.sample_weight
        )
        self.multiclass_ = self._resolve_multiclass(data.n_classes, prior)
        likelihood = SoftmaxLikelihood(
            data.X,
            data.y,
            data.sample_weight,
            data.n_classes,
            reference=self.multiclass_ != "symmetric",
        )
        objective = PosteriorObjective(likelihood, prior)
        self._check_problem_size(objective)
        try:
            result = minimize(
                objective,
                np.zeros(objective.n_params),
                solver=self.solver,
                tol=self.tol,
                max_iter=self.max_iter,
            )
        except SingularHessianError as err:
            self._raise_if_separated(objective, force=True)
            raise ValueError(self._singular_message(objective, err, data.X)) from None
        self._raise_if_separated(objective, params=result.params, converged=result.converged)
        if not result.converged:
            warn_not_converged(result.n_iter, self.tol)
        return MAPFit(
            data=data,
            prior=prior,
            objective=objective,
            params=result.params,
            hessian=result.hessian,
            cholesky=result.cholesky,
            n_iter=result.n_iter,
            converged=result.converged,
        )

    def _check_problem_size(self, objective: PosteriorObjective) -> None:
        """Hook run before the solve; estimators that need more memory than the MAP override it."""

    def _resolve_multiclass(self, n_classes: int, prior: ResolvedPrior) -> str:
        if n_classes == 2:
            return "binary"
        if self.multiclass == "auto":
            return "symmetric" if prior.coef_is_proper else "reference"
        if self.multiclass == "symmetric" and not prior.coef_is_proper:
            raise ValueError(
                "multiclass='symmetric' needs a proper coefficient prior: with a flat "
                "prior the K coefficient rows are only identified up to a common shift. "
                "Set prior_scale to a number, or use multiclass='reference' (the MLE "
                "convention of statsmodels MNLogit and R's multinom)."
            )
        return self.multiclass

    def _store_map_fit(self, fit: MAPFit) -> None:
        objective, params = fit.objective, fit.params
        self.intercept_, self.coef_ = objective.intercept_coef(params)
        self.hessian_ = fit.hessian
        self.n_iter_ = fit.n_iter
        self.converged_ = fit.converged
        self.prior_scale_ = fit.prior.coef_scale
        self.intercept_prior_scale_ = fit.prior.intercept_scale
        likelihood = objective.likelihood
        self.log_likelihood_ = -likelihood.loss(objective.to_likelihood(params))
        if np.isfinite(objective.scale).any():
            self.log_posterior_ = self.log_likelihood_ + log_normal_density(params, objective.scale)
        elif hasattr(self, "log_posterior_"):
            del self.log_posterior_
        self._free_params = params
        self._cholesky = fit.cholesky
        self._jacobian = objective.jacobian()

    # -- diagnostics -------------------------------------------------------
    def _raise_if_separated(self, objective, params=None, converged=True, force=False):
        """Run the separation LP when the fit looks like a runaway MLE."""
        # Only the reference form can have flat coefficients (symmetric needs a
        # proper prior), and there free and likelihood coordinates coincide.
        if not objective.likelihood.reference:
            return
        flat = np.flatnonzero(objective.precision == 0)
        if len(flat) == 0:
            return
        if not force:
            log_lik = objective.likelihood.pointwise_log_likelihood(objective.to_likelihood(params))
            if converged and log_lik.max() < -SEPARATION_SUSPICION:
                return
        separation = find_separation(objective.likelihood, flat)
        if separation is None:
            if not force and not separation_check_fits(objective.likelihood, flat):
                # The symptoms above are all we have: warn rather than return a
                # possibly diverging MLE in silence.
                warnings.warn(
                    "Some fitted probabilities are numerically 0 or 1 (or the solver did "
                    "not converge) and the data are too large for the exact separation "
                    "check, so the classes may be separable: then the maximum-likelihood "
                    "estimate is infinite and these coefficients are meaningless. Use a "
                    "proper prior instead of prior_scale=None.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
            return
        labels = self._likelihood_param_labels(objective.likelihood)
        unordered = sorted({tuple(sorted(pair)) for pair in separation.class_pairs})
        pairs = "; ".join(
            f"{format_label(self.classes_[a])} and {format_label(self.classes_[b])}"
            for a, b in unordered
        )
        params_named = ", ".join(labels[j] for j in separation.parameters)
        n_samples = len(objective.likelihood.y)
        if separation.complete:
            kind, detail = "completely", "every sample lies strictly on its own class's side"
        else:
            kind = "quasi-completely"
            detail = (
                f"at least {separation.n_strict} of {n_samples} samples lie strictly on their "
                "own class's side and the rest on the boundary"
            )
        raise SeparationError(
            f"The classes are {kind} separable by a linear combination of [{params_named}] "
            f"(classes {pairs}): {detail}, "
            f"so the maximum-likelihood estimate is infinite. Use a proper "
            "prior instead of prior_scale=None (the default prior_scale=2.5 is weakly "
            "informative), or remove the separating features."
        )

    def _singular_message(self, objective, err: SingularHessianError, X) -> str:
        labels = self._free_param_labels(objective)
        involved = [labels[j] for j in err.involved]
        constant = [
            name for name, sd in zip(self._feature_names(), X.std(axis=0), strict=True) if sd == 0
        ]
        hint = f" Constant columns (they duplicate the intercept): {constant}." if constant else ""
        return (
            "The objective is flat along a combination of "
            f"{involved}: these columns are constant or linearly dependent, so the "
            f"parameters are not identified under a flat prior.{hint} Drop the redundant "
            "columns, or give them a proper prior (set prior_scale, and "
            "intercept_prior_scale for the intercept)."
        )

    # -- labels --------------------------------------------------------------
    def _feature_names(self) -> list[str]:
        return feature_names(self)

    def _row_classes(self, likelihood) -> list:
        """Class label of each row of the likelihood's parameters."""
        classes = list(self.classes_)
        return classes[1:] if likelihood.reference else classes

    def _likelihood_param_labels(self, likelihood) -> list[str]:
        rows = self._row_classes(likelihood)
        binary = likelihood.n_classes == 2
        tag = (lambda c: "") if binary else (lambda c: f"[{c}]")
        return [f"intercept{tag(c)}" for c in rows] + [
            f"{name}{tag(c)}" for c in rows for name in self._feature_names()
        ]

    def _free_param_labels(self, objective) -> list[str]:
        labels = self._likelihood_param_labels(objective.likelihood)
        if not objective.sum_to_zero:
            return labels
        m = objective.likelihood.n_rows
        return [f"intercept contrast {j + 1}" for j in range(m - 1)] + labels[m:]

    # -- summary -------------------------------------------------------------
    def _reported_covariance(self) -> np.ndarray:
        """Covariance of the likelihood parameters: T H^{-1} T^T via the Cholesky factor."""
        half = self._covariance_half()
        return half.T @ half

    def _covariance_half(self) -> np.ndarray:
        """B = L^{-1} T^T, so that the likelihood-parameter covariance is B^T B."""
        if self._cholesky is None:
            raise ValueError(
                "This fit has no Hessian (solver='lbfgs', or too many parameters for a "
                "dense Hessian), so standard errors are unavailable. Refit with "
                "solver='newton'."
            )
        return linalg.solve_triangular(self._cholesky, self._jacobian.T, lower=True)

    def _linear_predictor_covariance(self, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
        r"""Covariance of the linear predictors at each row of X under N(theta_hat, H^-1).

        With :math:`B = L^{-1} T^\top` and :math:`\tilde x = (1, x)`, the
        predictor of row k is :math:`\eta_k = \tilde x^\top \theta_k`, so
        :math:`\mathrm{Cov}(\eta_k, \eta_l) = (B_k \tilde x)^\top (B_l \tilde x)`
        with :math:`B_k` the columns of row k's parameters. Rows are processed in
        chunks to bound memory.

        Returns
        -------
        ndarray of shape (n_samples, m, m)
            m = 1 (binary), K - 1 (reference) or K (symmetric).
        """
        half = self._covariance_half()
        n_rows = len(self.classes_) - 1 if self.multiclass_ != "symmetric" else len(self.classes_)
        d = X.shape[1]
        blocks = [
            np.column_stack([half[:, k], half[:, n_rows + k * d : n_rows + (k + 1) * d]])
            for k in range(n_rows)
        ]
        out = np.empty((X.shape[0], n_rows, n_rows))
        for start in range(0, X.shape[0], chunk):
            rows = X[start : start + chunk]
            projected = [rows @ block[:, 1:].T + block[:, 0] for block in blocks]
            for a in range(n_rows):
                for b in range(a, n_rows):
                    cov = np.einsum("ij,ij->i", projected[a], projected[b])
                    out[start : start + chunk, a, b] = out[start : start + chunk, b, a] = cov
        return out

    def summary(self, ci_prob: float = 0.95) -> pd.DataFrame:
        """Coefficient table: estimate, standard error, z, p-value and interval.

        Standard errors come from the inverse Hessian of the penalised negative
        log-posterior at the optimum (the Laplace posterior sd; the usual
        asymptotic standard errors for MLE). ``z = estimate / std_error``,
        ``p_value = 2 Phi(-|z|)`` and the interval is
        ``estimate +- Phi^{-1}((1 + ci_prob) / 2) * std_error``.

        Parameters
        ----------
        ci_prob : float, default=0.95

        Returns
        -------
        DataFrame indexed by (class, term); the reference class of a
        reference-parametrised model is omitted (its parameters are fixed at 0).
        """
        check_is_fitted(self)
        if not 0 < ci_prob < 1:
            raise ValueError(f"ci_prob must be in (0, 1); got {ci_prob!r}.")
        reference = self.multiclass_ != "symmetric"
        row_classes = list(self.classes_)[1:] if reference else list(self.classes_)
        m = len(row_classes)
        offset = len(self.intercept_) - m  # 1 when a zero reference row is stored
        estimate = np.concatenate([self.intercept_[offset:], self.coef_[offset:].ravel()])
        std_error = np.sqrt(np.diag(self._reported_covariance()))
        z = estimate / std_error
        half_width = stats.norm.ppf(0.5 + ci_prob / 2) * std_error
        terms = ["intercept"] * m + self._feature_names() * m
        classes = row_classes + [c for c in row_classes for _ in range(self.n_features_in_)]
        table = pd.DataFrame(
            {
                "estimate": estimate,
                "std_error": std_error,
                "z": z,
                "p_value": 2 * stats.norm.sf(np.abs(z)),
                "ci_lower": estimate - half_width,
                "ci_upper": estimate + half_width,
            },
            index=pd.MultiIndex.from_arrays([classes, terms], names=["class", "term"]),
        )
        order = np.argsort([row_classes.index(c) for c in classes], kind="stable")
        table = table.iloc[order]
        table.attrs["ci_prob"] = ci_prob
        return table
