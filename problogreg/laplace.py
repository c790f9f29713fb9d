r"""LaplaceLogisticRegression: a Gaussian posterior at the MAP.

The posterior over the free parameters :math:`\phi` (intercepts first, see
:mod:`problogreg.objective`) is approximated by

.. math::

    p(\phi \mid X, y) \approx \mathcal N(\hat\phi, H^{-1}), \qquad
    H = \nabla^2 f(\hat\phi) = L L^\top,

with :math:`f` the penalised negative log-posterior, :math:`\hat\phi` its
minimiser and :math:`H` its exact Hessian there (never a quasi-Newton
estimate). Everything is computed from the Cholesky factor :math:`L`:

* covariance :math:`\Sigma = H^{-1} = L^{-\top} L^{-1}`;
* draws :math:`\phi = \hat\phi + L^{-\top} z`, :math:`z \sim \mathcal N(0, I)`;
* log evidence :math:`\log p(y \mid X) \approx \log p(y \mid \hat\phi) +
  \log p(\hat\phi) + \tfrac{p}{2}\log 2\pi - \sum_j \log L_{jj}`.

Free parameters map linearly to the likelihood's intercepts and coefficients,
:math:`\theta = T\phi` (``objective.to_likelihood``; ``objective.jacobian()``
is :math:`T`). :math:`T` is the identity except for the symmetric multiclass
model with a flat intercept prior: there the K intercepts are :math:`b = Q a`
with :math:`Q` an orthonormal (Helmert) basis of the sum-to-zero vectors and
:math:`a` the K-1 free contrasts, so the Gaussian over :math:`\phi` is proper
and every intercept draw sums to zero exactly. Draws of ``coef`` and
``intercept`` are :math:`T\phi`, reshaped to the stored layout (a reference
class's row is stored as zeros).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import linalg, optimize, special
from sklearn.utils.validation import check_is_fitted

from ._validation import _validate_sample_weight, format_label, validate_predict_data
from .likelihood import log_proba_from_logits
from .map import MAPFit, MAPLogisticRegression
from .newton import (
    DENSE_HESSIAN_MAX_BYTES,
    SingularHessianError,
    cholesky_or_explain,
    minimize,
    warn_not_converged,
)
from .objective import PosteriorObjective
from .priors import ResolvedPrior, log_normal_density

#: A Laplace fit keeps up to four dense p x p matrices (Hessian, Cholesky factor,
#: covariance, and the transient inverse factor); together they must fit this budget.
LAPLACE_DENSE_MATRICES = 4
#: Float64 elements of a temporary (draws x samples x classes) block.
DRAW_CHUNK_ELEMENTS = 2**23
#: Largest array of draws a method may return (sample_posterior's log-likelihood).
MAX_RETURNED_BYTES = 2 * 1024**3
#: Bounds of the empirical-Bayes search, as factors of the given prior scale.
EVIDENCE_SEARCH_FACTORS = (1e-3, 1e3)
#: Pareto k above which importance sampling (and the Laplace approximation) is unreliable.
PARETO_K_LIMIT = 0.7
_PREDICT_METHODS = ("probit", "mc", "map")


class UndefinedEvidenceError(ValueError, AttributeError):
    """The marginal likelihood does not exist: some prior is flat (improper)."""


@dataclass(frozen=True)
class ApproximationCheck:
    """The Laplace posterior used as an importance-sampling proposal for the exact posterior.

    Attributes
    ----------
    pareto_k : float
        Shape of the generalised Pareto fit to the largest importance ratios
        :math:`p(\\phi \\mid y) / q(\\phi)`. Below ``threshold`` the ratios have
        a finite variance in practice and the Laplace approximation is good.
    ess : float
        Effective sample size of the Pareto-smoothed weights, :math:`1 / \\sum_s w_s^2`.
    mean, sd : ndarray of shape (n_params,)
        Importance-sampling estimates of the exact posterior mean and sd of the
        free parameters, in the order of ``posterior_mean_``.
    laplace_mean, laplace_sd : ndarray of shape (n_params,)
        The Laplace approximation's mean and sd, for comparison.
    names : list of str
        Parameter names, in the same order.
    n_draws : int
    threshold : float
        :math:`\\min(1 - 1/\\log_{10} S, 0.7)` for S draws (Vehtari et al., 2024).
    """

    pareto_k: float
    ess: float
    mean: np.ndarray
    sd: np.ndarray
    laplace_mean: np.ndarray
    laplace_sd: np.ndarray
    names: list
    n_draws: int
    threshold: float

    @property
    def trustworthy(self) -> bool:
        return self.pareto_k < self.threshold

    @property
    def verdict(self) -> str:
        if self.trustworthy:
            return (
                f"Pareto k = {self.pareto_k:.2f} < {self.threshold:.2f}: the Laplace "
                f"approximation is trustworthy (importance-sampling ESS {self.ess:.0f} of "
                f"{self.n_draws})."
            )
        return (
            f"Pareto k = {self.pareto_k:.2f} >= {self.threshold:.2f}: the posterior is far from "
            "Gaussian and the Laplace approximation (and its importance-sampling correction) "
            "cannot be trusted; sample the exact posterior with NUTS (PyMCLogisticRegression)."
        )

    def __str__(self) -> str:
        return self.verdict

    def to_frame(self) -> pd.DataFrame:
        """Laplace and importance-sampling-corrected mean and sd, one row per parameter."""
        return pd.DataFrame(
            {
                "laplace_mean": self.laplace_mean,
                "is_mean": self.mean,
                "laplace_sd": self.laplace_sd,
                "is_sd": self.sd,
            },
            index=pd.Index(self.names, name="parameter"),
        )


def _rng(random_state) -> np.random.Generator:
    """A numpy Generator from None, an int, a SeedSequence or a Generator."""
    return np.random.default_rng(random_state)


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _check_prob(prob) -> float:
    if not isinstance(prob, Real) or not 0 < prob < 1:
        raise ValueError(f"prob must be a number strictly between 0 and 1; got {prob!r}.")
    return float(prob)


def _moderated_log_proba(mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    r"""Log class probabilities under Gaussian logits, by the pairwise probit approximation.

    Writing the softmax as :math:`p_k = 1 / \sum_j \exp(-(z_k - z_j))` and
    moderating each logit difference like the binary probit approximation gives
    the mean-field approximation of Lu, Ie & Sha (2020, "Mean-field approximation
    to Gaussian-softmax integral"), here with the full variance of each logit
    difference (covariances included, not independent logits):

    .. math::

        \tilde p_k = \Big(\sum_j \exp\big(-\tfrac{\mu_k - \mu_j}
        {\sqrt{1 + \pi v_{kj} / 8}}\big)\Big)^{-1},
        \quad v_{kj} = \mathrm{Var}(z_k - z_j),

        p_k = \tilde p_k / \textstyle\sum_l \tilde p_l.

    For two classes this is exactly :math:`\sigma(\mu / \sqrt{1 + \pi s^2/8})`
    (the normalisation is then a no-op). It depends on logit differences only,
    so a reference class's fixed zero logit is handled like any other.

    Parameters
    ----------
    mean : ndarray of shape (n, K)
        Mean class logits.
    cov : ndarray of shape (n, K, K)
        Covariance of the class logits.
    """
    variance = np.diagonal(cov, axis1=1, axis2=2)
    difference_variance = variance[:, :, None] + variance[:, None, :] - 2.0 * cov
    # Rounding can leave the zero diagonal slightly negative.
    difference_variance = np.maximum(difference_variance, 0.0)
    difference = mean[:, :, None] - mean[:, None, :]
    moderated = difference / np.sqrt(1.0 + np.pi / 8.0 * difference_variance)
    log_unnormalised = -special.logsumexp(-moderated, axis=2)
    return log_proba_from_logits(log_unnormalised)


class LaplaceLogisticRegression(MAPLogisticRegression):
    """Logistic regression with a Gaussian (Laplace) approximation to the posterior.

    The posterior over the free parameters is N(``posterior_mean_``,
    ``posterior_cov_``): the MAP and the inverse of the exact Hessian of the
    penalised negative log-posterior there (see the module docstring for the
    formulas and the mapping to ``coef``/``intercept``).

    Parameters
    ----------
    prior_scale, intercept_prior_scale, autoscale, multiclass, solver, tol, max_iter
        As for :class:`~problogreg.MAPLogisticRegression`. With
        ``solver="lbfgs"`` the exact Hessian is still computed once, at the optimum.
    optimize_prior : bool, default=False
        Empirical Bayes: multiply the coefficient prior scales by the global
        factor that maximises the Laplace evidence (a bounded 1-D search on the
        log scale, each step a warm-started MAP fit). Needs proper priors.

    Attributes
    ----------
    posterior_mean_ : ndarray of shape (n_params,)
        The MAP in free coordinates (intercepts first; for the symmetric model
        with a flat intercept prior, K-1 orthonormal intercept contrasts).
    posterior_cov_ : ndarray of shape (n_params, n_params)
        :math:`H^{-1} = L^{-\\top} L^{-1}` from the Cholesky factor of ``hessian_``.
    log_evidence_ : float
        Laplace approximation of :math:`\\log p(y \\mid X)` with the normalised
        prior. Accessing it raises :class:`UndefinedEvidenceError` when a prior is flat.
    effective_n_params_ : float
        :math:`\\gamma = p - \\sum_j \\lambda_j \\Sigma_{jj}` (MacKay's number of
        well-determined parameters; :math:`\\lambda_j` the prior precisions).
    evidence_prior_scale_ : float or ndarray
        Only with ``optimize_prior=True``: the ``prior_scale`` argument that
        maximises the evidence; ``prior_scale_`` holds the resolved scales.
    Others as for :class:`~problogreg.MAPLogisticRegression`: ``coef_``,
    ``intercept_``, ``hessian_``, ``classes_``, ``prior_scale_``, ...

    Examples
    --------
    >>> import numpy as np
    >>> from problogreg import LaplaceLogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    >>> y = np.array([0, 0, 1, 0, 1])
    >>> model = LaplaceLogisticRegression().fit(X, y)
    >>> proba = model.predict_proba(X)
    >>> lower, upper = model.predict_interval(X)
    >>> bool(np.all((lower <= proba) & (proba <= upper)))
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        **MAPLogisticRegression._parameter_constraints,
        "optimize_prior": ["boolean"],
    }

    def __init__(
        self,
        prior_scale=2.5,
        intercept_prior_scale=10.0,
        autoscale=True,
        multiclass="auto",
        optimize_prior=False,
        solver="auto",
        tol=1e-8,
        max_iter=100,
    ):
        self.prior_scale = prior_scale
        self.intercept_prior_scale = intercept_prior_scale
        self.autoscale = autoscale
        self.multiclass = multiclass
        self.optimize_prior = optimize_prior
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

    # -- fit -----------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit the MAP, the exact Hessian there, and the Gaussian posterior.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self

        Raises
        ------
        ValueError
            As for the MAP fit; with ``optimize_prior=True`` and a flat prior
            (the evidence is then undefined).
        MemoryError
            When the dense posterior covariance over K·(d+1) parameters would
            not fit in memory.
        """
        self._validate_params()
        fit = self._with_hessian(self._fit_map(X, y, sample_weight))
        if self.optimize_prior and not fit.prior.is_proper:
            raise ValueError(
                "optimize_prior=True maximises the marginal likelihood, which is undefined "
                "under a flat prior: set prior_scale (without inf entries) and "
                "intercept_prior_scale to numbers."
            )
        if self.optimize_prior:
            fit = self._maximise_evidence(fit)
            if not fit.converged:
                warn_not_converged(fit.n_iter, self.tol)
        elif hasattr(self, "evidence_prior_scale_"):
            del self.evidence_prior_scale_
        self._store_map_fit(fit)
        self._store_posterior(fit)
        return self

    def _check_problem_size(self, objective: PosteriorObjective) -> None:
        n_params = objective.n_params
        needed = LAPLACE_DENSE_MATRICES * 8 * n_params**2
        if needed > DENSE_HESSIAN_MAX_BYTES:
            raise MemoryError(
                f"The Laplace posterior over {n_params} parameters (classes x (features + 1)) "
                f"needs {LAPLACE_DENSE_MATRICES} dense {n_params} x {n_params} matrices, "
                f"{needed / 1024**3:.1f} GiB (limit {DENSE_HESSIAN_MAX_BYTES / 1024**3:.0f} "
                "GiB). Reduce the number of features (selection or PCA), or use "
                "MAPLogisticRegression(solver='lbfgs') for a point estimate."
            )

    def _with_hessian(self, fit: MAPFit) -> MAPFit:
        """Add the exact Hessian and its Cholesky factor when the solver did not form them."""
        if fit.cholesky is not None:
            return fit
        hessian = fit.objective.hessian(fit.params)
        try:
            cholesky = cholesky_or_explain(hessian)
        except SingularHessianError as err:
            raise ValueError(self._singular_message(fit.objective, err, fit.data.X)) from None
        return MAPFit(
            data=fit.data,
            prior=fit.prior,
            objective=fit.objective,
            params=fit.params,
            hessian=hessian,
            cholesky=cholesky,
            n_iter=fit.n_iter,
            converged=fit.converged,
        )

    def _store_posterior(self, fit: MAPFit) -> None:
        objective, cholesky = fit.objective, fit.cholesky
        self.posterior_mean_ = fit.params.copy()
        inverse_factor = linalg.solve_triangular(
            cholesky, np.eye(len(fit.params)), lower=True, check_finite=False
        )
        # (L^{-1})^T L^{-1} is symmetric by construction, unlike a general inverse.
        self.posterior_cov_ = inverse_factor.T @ inverse_factor
        self.effective_n_params_ = float(
            len(fit.params) - np.sum(objective.precision * np.diag(self.posterior_cov_))
        )
        self._log_evidence = (
            _laplace_log_evidence(fit) if np.all(np.isfinite(objective.scale)) else None
        )
        self._free_scale = objective.scale
        self._param_names = self._free_param_labels(objective)

    @property
    def log_evidence_(self) -> float:
        check_is_fitted(self)
        if self._log_evidence is None:
            raise UndefinedEvidenceError(
                "log_evidence_ is undefined: a flat prior (prior_scale=None or "
                "intercept_prior_scale=None) is improper, so the marginal likelihood "
                "p(y | X) does not exist. Give every parameter a proper prior to compare "
                "models by evidence."
            )
        return self._log_evidence

    # -- empirical Bayes ---------------------------------------------------
    def _maximise_evidence(self, fit: MAPFit) -> MAPFit:
        r"""Maximise the Laplace evidence over a global factor c of the coefficient scales.

        The scales become :math:`c\,s_j`; the search is Brent's bounded method
        on :math:`\log c`, each evaluation a MAP fit warm-started at the
        previous optimum. The result is never worse than :math:`c = 1`.
        """
        likelihood, base = fit.objective.likelihood, fit.prior
        # Only the best fit so far is kept: each one holds dense p x p matrices.
        best = {"log_factor": 0.0, "fit": fit, "log_evidence": _laplace_log_evidence(fit)}
        warm_start = [fit.params]

        def negative_log_evidence(log_factor: float) -> float:
            prior = ResolvedPrior(
                coef_scale=base.coef_scale * math.exp(log_factor),
                intercept_scale=base.intercept_scale,
            )
            objective = PosteriorObjective(likelihood, prior)
            result = minimize(
                objective,
                warm_start[0],
                solver=self.solver,
                tol=self.tol,
                max_iter=self.max_iter,
            )
            warm_start[0] = result.params
            trial = self._with_hessian(
                MAPFit(
                    data=fit.data,
                    prior=prior,
                    objective=objective,
                    params=result.params,
                    hessian=result.hessian,
                    cholesky=result.cholesky,
                    n_iter=result.n_iter,
                    converged=result.converged,
                )
            )
            log_evidence = _laplace_log_evidence(trial)
            if log_evidence > best["log_evidence"]:
                best.update(log_factor=log_factor, fit=trial, log_evidence=log_evidence)
            return -log_evidence

        low, high = (math.log(factor) for factor in EVIDENCE_SEARCH_FACTORS)
        optimize.minimize_scalar(
            negative_log_evidence, bounds=(low, high), method="bounded", options={"xatol": 1e-4}
        )
        factor = math.exp(best["log_factor"])
        self.evidence_prior_scale_ = factor * (
            np.asarray(self.prior_scale, dtype=float)
            if np.ndim(self.prior_scale)
            else float(self.prior_scale)
        )
        return best["fit"]

    # -- the posterior in likelihood coordinates -----------------------------
    def _sample_free(self, n_draws: int, rng: np.random.Generator):
        """Draws of the free parameters, and the standard normals z they came from."""
        z = rng.standard_normal((n_draws, len(self.posterior_mean_)))
        offset = linalg.solve_triangular(
            self._cholesky, z.T, lower=True, trans="T", check_finite=False
        )
        return self.posterior_mean_ + offset.T, z

    def _gaussian_log_density(self, z: np.ndarray) -> np.ndarray:
        r"""Gaussian log density at the draws made from ``z``.

        :math:`\log q(\phi) = -\tfrac12 \lVert z\rVert^2 - \tfrac p2 \log 2\pi
        + \sum_j \log L_{jj}`, because :math:`L^\top (\phi - \hat\phi) = z`.
        """
        p = z.shape[1]
        return (
            -0.5 * np.sum(z**2, axis=1)
            - 0.5 * p * np.log(2 * np.pi)
            + np.sum(np.log(np.diag(self._cholesky)))
        )

    def _n_rows(self) -> int:
        """Rows of likelihood parameters: K for the symmetric model, K - 1 otherwise."""
        n_classes = len(self.classes_)
        return n_classes if self.multiclass_ == "symmetric" else n_classes - 1

    def _to_likelihood(self, free: np.ndarray) -> np.ndarray:
        """Map draws (S, n_params) to the likelihood's [b, w] layout, theta = T phi."""
        if self._jacobian.shape == (free.shape[1], free.shape[1]):
            return free  # T is the identity
        return free @ self._jacobian.T

    def _stored_layout(self, theta: np.ndarray):
        """Intercept and coef draws shaped like ``intercept_``/``coef_`` without the binary axis."""
        m, d = self._n_rows(), self.n_features_in_
        intercept = theta[:, :m]
        coef = theta[:, m:].reshape(len(theta), m, d)
        if len(self.classes_) == 2:
            return intercept[:, 0], coef[:, 0]
        if self.multiclass_ == "reference":
            intercept = np.concatenate([np.zeros((len(theta), 1)), intercept], axis=1)
            coef = np.concatenate([np.zeros((len(theta), 1, d)), coef], axis=1)
        return intercept, coef

    def _log_proba_draws(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Class log-probabilities (S, n, K) for likelihood-coordinate draws theta (S, n_lik)."""
        m, (n, d) = self._n_rows(), X.shape
        n_draws = len(theta)
        eta = (X @ theta[:, m:].reshape(n_draws * m, d).T).reshape(n, n_draws, m)
        eta = eta.transpose(1, 0, 2) + theta[:, None, :m]
        if self.multiclass_ != "symmetric":
            eta = np.concatenate([np.zeros((n_draws, n, 1)), eta], axis=2)
        return log_proba_from_logits(eta, axis=2)

    def _draw_chunks(self, n_draws: int, n_samples: int):
        """Slices of draws whose (draws x samples x classes) block fits the chunk budget."""
        step = max(1, DRAW_CHUNK_ELEMENTS // max(1, n_samples * len(self.classes_)))
        for start in range(0, n_draws, step):
            yield slice(start, min(start + step, n_draws))

    def _row_chunks(self, n_draws: int, n_samples: int):
        """Slices of samples whose (draws x samples x classes) block fits the chunk budget."""
        step = max(1, DRAW_CHUNK_ELEMENTS // max(1, n_draws * len(self.classes_)))
        for start in range(0, n_samples, step):
            yield slice(start, min(start + step, n_samples))

    def _observed_log_proba(self, theta, X, codes) -> np.ndarray:
        """log p(y_i | x_i, theta_s) for a block of draws, shape (S, n)."""
        if len(self.classes_) == 2:
            # Binary shortcut: log sigma(+-eta), without an (S, n, 2) array.
            signed = theta[:, 1:] @ X.T
            signed += theta[:, :1]
            signed *= 2.0 * codes - 1.0
            return _log_sigmoid_inplace(signed)
        return self._log_proba_draws(theta, X)[:, np.arange(len(codes)), codes]

    def _pointwise_log_likelihood(self, theta, X, codes) -> np.ndarray:
        """Unweighted log p(y_i | x_i, theta_s), shape (S, n)."""
        out = np.empty((len(theta), len(codes)))
        for part in self._draw_chunks(len(theta), len(codes)):
            out[part] = self._observed_log_proba(theta[part], X, codes)
        return out

    def _total_log_likelihood(self, theta, X, codes, weights) -> np.ndarray:
        """Weighted sum_i s_i log p(y_i | x_i, theta_s), shape (S,), without an (S, n) array."""
        out = np.empty(len(theta))
        for part in self._draw_chunks(len(theta), len(codes)):
            out[part] = self._observed_log_proba(theta[part], X, codes) @ weights
        return out

    def _log_prior(self, free: np.ndarray) -> np.ndarray:
        """Normalised log prior density of draws (S, n_params); flat entries contribute 0."""
        return np.array([log_normal_density(phi, self._free_scale) for phi in free])

    # -- prediction ------------------------------------------------------------
    def _logit_moments(self, X: np.ndarray):
        """Mean (n, K) and covariance (n, K, K) of the class logits at each row of X."""
        mean = X @ self.coef_.T + self.intercept_
        cov = self._linear_predictor_covariance(X)
        if self.multiclass_ == "symmetric":
            return mean, cov
        n, m = cov.shape[:2]
        full = np.zeros((n, m + 1, m + 1))
        full[:, 1:, 1:] = cov
        mean = mean if mean.shape[1] == m + 1 else np.column_stack([np.zeros(n), mean])
        return mean, full

    def _check_method(self, method: str) -> None:
        if method not in _PREDICT_METHODS:
            raise ValueError(
                f"method must be one of {', '.join(map(repr, _PREDICT_METHODS))}; got {method!r}."
            )

    def predict_log_proba(self, X, method="probit", draws=4000, random_state=0):
        """Log of :meth:`predict_proba` (computed stably for the probit and plug-in methods)."""
        self._check_method(method)
        if method == "map":
            return super().predict_log_proba(X)
        if method == "probit":
            X = validate_predict_data(self, X)
            log_proba = np.empty((X.shape[0], len(self.classes_)))
            # Several (rows x K x K) temporaries: bound them like a block of draws.
            for rows in self._row_chunks(len(self.classes_), X.shape[0]):
                log_proba[rows] = _moderated_log_proba(*self._logit_moments(X[rows]))
            return log_proba
        with np.errstate(divide="ignore"):
            return np.log(
                self.predict_proba(X, method=method, draws=draws, random_state=random_state)
            )

    def predict_proba(self, X, method="probit", draws=4000, random_state=0):
        """Posterior predictive class probabilities, shape (n_samples, n_classes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        method : {"probit", "mc", "map"}, default="probit"
            "probit": closed form. For two classes the moderated output
            :math:`\\sigma(\\mu / \\sqrt{1 + \\pi s^2 / 8})`, with :math:`\\mu, s^2`
            the posterior mean and variance of the linear predictor; for more
            classes the pairwise (mean-field) extension of the same formula,
            see :func:`_moderated_log_proba`. "mc": the average of the softmax
            over ``draws`` posterior draws (seeded by ``random_state``).
            "map": plug-in probabilities at the MAP.
        draws : int, default=4000
            Monte Carlo draws for ``method="mc"``.
        random_state : int, numpy Generator or None, default=0
        """
        self._check_method(method)
        if method != "mc":
            return np.exp(self.predict_log_proba(X, method=method))
        X = validate_predict_data(self, X)
        draws = _check_count(draws, "draws")
        theta = self._to_likelihood(self._sample_free(draws, _rng(random_state))[0])
        proba = np.empty((X.shape[0], len(self.classes_)))
        for rows in self._row_chunks(draws, X.shape[0]):
            proba[rows] = np.exp(self._log_proba_draws(theta, X[rows])).mean(axis=0)
        return proba

    def decision_function(self, X):
        """Moderated scores: log-odds of ``classes_[1]`` (binary) or log-probabilities.

        These are the scores of the default ``predict_proba`` (method "probit"),
        so they rank samples the same way.
        """
        log_proba = self.predict_log_proba(X)
        return log_proba[:, 1] - log_proba[:, 0] if len(self.classes_) == 2 else log_proba

    def predict_interval(self, X, prob=0.94, draws=4000, random_state=0):
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
        random_state : int, numpy Generator or None, default=0

        Returns
        -------
        lower, upper : ndarrays of shape (n_samples, n_classes)
        """
        from scipy import stats

        prob = _check_prob(prob)
        X = validate_predict_data(self, X)
        if len(self.classes_) == 2:
            mean, cov = self._logit_moments(X)
            half_width = stats.norm.ppf(0.5 + prob / 2) * np.sqrt(cov[:, 1, 1])
            lower = special.expit(mean[:, 1] - half_width)
            upper = special.expit(mean[:, 1] + half_width)
            return np.column_stack([1 - upper, lower]), np.column_stack([1 - lower, upper])
        draws = _check_count(draws, "draws")
        theta = self._to_likelihood(self._sample_free(draws, _rng(random_state))[0])
        bounds = np.empty((2, X.shape[0], len(self.classes_)))
        for rows in self._row_chunks(draws, X.shape[0]):
            proba = np.exp(self._log_proba_draws(theta, X[rows]))
            bounds[:, rows] = np.quantile(proba, [0.5 - prob / 2, 0.5 + prob / 2], axis=0)
        return bounds[0], bounds[1]

    # -- draws as ArviZ data -------------------------------------------------
    def _encode_data(self, X, y, sample_weight=None):
        """Validate X and y against the fitted model: X array, class codes, weights."""
        if X is None or y is None:
            raise ValueError("Pass both X and y (the data whose log-likelihood is wanted).")
        X = validate_predict_data(self, X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != X.shape[0]:
            raise ValueError(
                f"y must be a 1-D array with one label per row of X ({X.shape[0]}); "
                f"got shape {y.shape}."
            )
        codes = np.searchsorted(self.classes_, y)
        known = (codes < len(self.classes_)) & (
            self.classes_[np.minimum(codes, len(self.classes_) - 1)] == y
        )
        if not np.all(known):
            unknown = sorted({format_label(label) for label in y[~known]})
            fitted = ", ".join(format_label(label) for label in self.classes_)
            raise ValueError(
                f"y contains labels the model was not fitted on: {', '.join(unknown)}; "
                f"the fitted classes are {fitted}."
            )
        return X, codes, _validate_sample_weight(sample_weight, X.shape[0])

    def sample_posterior(self, X=None, y=None, draws=1000, chains=4, random_state=None):
        """Draws from the Laplace posterior as an ArviZ DataTree.

        Parameters
        ----------
        X, y : optional
            Data (usually the training data) whose pointwise log-likelihood
            :math:`\\log p(y_i \\mid x_i, \\theta)` is stored in the
            ``log_likelihood`` group (variable ``y``, dims (chain, draw,
            obs_id)), with ``observed_data`` holding ``y``.
        draws, chains : int
            The ``chains x draws`` draws are independent; the chain dimension
            exists so that ArviZ diagnostics apply unchanged.
        random_state : int, numpy Generator or None

        Returns
        -------
        xarray.DataTree
            ``posterior`` with ``coef`` (chain, draw, feature) or (chain, draw,
            class, feature) and ``intercept`` (chain, draw) or (chain, draw,
            class); a reference class's parameters are stored as zeros.
        """
        check_is_fitted(self)
        draws, chains = _check_count(draws, "draws"), _check_count(chains, "chains")
        if (X is None) != (y is None):
            raise ValueError("Pass X and y together (for the log-likelihood), or neither.")
        n_draws = draws * chains
        n_samples = 0 if X is None else len(X)
        needed = 8 * n_draws * (n_samples + self._jacobian.shape[0])
        if needed > MAX_RETURNED_BYTES:
            raise MemoryError(
                f"{chains} chains x {draws} draws over {n_samples} observations would need "
                f"{needed / 1024**3:.1f} GiB (limit {MAX_RETURNED_BYTES / 1024**3:.0f} GiB). "
                "Use fewer draws, or a subset of the rows for the log-likelihood."
            )
        free, _ = self._sample_free(n_draws, _rng(random_state))
        theta = self._to_likelihood(free)
        if X is None:
            return self._datatree(theta, chains)
        X, codes, _ = self._encode_data(X, y)
        return self._datatree(theta, chains, codes, self._pointwise_log_likelihood(theta, X, codes))

    def _datatree(self, theta: np.ndarray, chains: int, codes=None, log_likelihood=None):
        """DataTree of likelihood-coordinate draws (chains * draws, n_lik), following DESIGN.md."""
        import arviz as az

        intercept, coef = self._stored_layout(theta)
        shape = (chains, len(theta) // chains)
        binary = len(self.classes_) == 2
        data = {
            "posterior": {
                "coef": coef.reshape(*shape, *coef.shape[1:]),
                "intercept": intercept.reshape(*shape, *intercept.shape[1:]),
            }
        }
        dims = {
            "coef": ["feature"] if binary else ["class", "feature"],
            "intercept": [] if binary else ["class"],
        }
        coords = {"feature": self._feature_names()}
        if not binary:
            coords["class"] = list(self.classes_)
        if codes is not None:
            data["log_likelihood"] = {"y": log_likelihood.reshape(*shape, len(codes))}
            data["observed_data"] = {"y": self.classes_[codes]}
            dims["y"] = ["obs_id"]
            coords["obs_id"] = np.arange(len(codes))
        attrs = {"posterior": {"inference_library": "problogreg", "method": "laplace"}}
        return az.from_dict(data, coords=coords, dims=dims, attrs=attrs)

    # -- checks against the exact posterior ------------------------------------
    def check_approximation(self, X, y, draws=4000, random_state=None, sample_weight=None):
        """Check the Laplace posterior by Pareto-smoothed importance sampling (PSIS).

        Draws :math:`\\phi_s \\sim q = N(\\hat\\phi, H^{-1})`, weights them by
        :math:`r_s = \\tilde p(\\phi_s \\mid y) / q(\\phi_s)` with
        :math:`\\tilde p` the unnormalised exact posterior, smooths the largest
        ratios with ArviZ's PSIS, and reports the Pareto shape k of their tail:
        below the threshold the approximation is good and the self-normalised
        weights give corrected posterior means and sds; above it, use NUTS.

        Parameters
        ----------
        X, y : the training data (the exact posterior is defined by them).
        draws : int, default=4000
        random_state : int, numpy Generator or None
        sample_weight : array-like, optional
            The training weights, if the model was fitted with weights.

        Returns
        -------
        ApproximationCheck
        """
        import xarray as xr
        from arviz_stats import accessors  # noqa: F401  (registers the .azstats accessor)

        check_is_fitted(self)
        draws = _check_count(draws, "draws")
        if draws < 100:
            raise ValueError(f"draws={draws} is too few to fit the Pareto tail; use at least 100.")
        X, codes, weights = self._encode_data(X, y, sample_weight)
        free, z = self._sample_free(draws, _rng(random_state))
        log_p = self._total_log_likelihood(self._to_likelihood(free), X, codes, weights)
        log_ratio = log_p + self._log_prior(free) - self._gaussian_log_density(z)
        # ArviZ's psislw smooths the ratios exp(-input), the convention of PSIS-LOO
        # (input = log-likelihood), so it gets the negated log ratios.
        log_weights, pareto_k = xr.DataArray(-log_ratio, dims=["draw"]).azstats.psislw(dim="draw")
        weights = np.exp(log_weights.values - special.logsumexp(log_weights.values))
        mean = weights @ free
        sd = np.sqrt(weights @ (free - mean) ** 2)
        return ApproximationCheck(
            pareto_k=float(pareto_k),
            ess=float(1.0 / np.sum(weights**2)),
            mean=mean,
            sd=sd,
            laplace_mean=self.posterior_mean_.copy(),
            laplace_sd=np.sqrt(np.diag(self.posterior_cov_)),
            names=list(self._param_names),
            n_draws=draws,
            threshold=min(1 - 1 / math.log10(draws), PARETO_K_LIMIT),
        )

    def loo(self, X, y, draws=1000, chains=4, random_state=None, sample_weight=None):
        """PSIS-LOO of the Laplace posterior, corrected for the approximation.

        Draws from the Gaussian, stores their pointwise log-likelihood, and
        calls ``arviz.loo_approximate_posterior`` with the exact unnormalised
        log posterior ``log_p`` and the Gaussian's ``log_q`` at the draws, so
        the importance weights target the exact posterior's LOO predictive.

        Parameters
        ----------
        X, y : the training data.
        draws, chains : int
        random_state : int, numpy Generator or None
        sample_weight : array-like, optional
            The training weights (they enter log_p; the pointwise terms are unweighted).

        Returns
        -------
        arviz ELPDDataLOO
            Accepted by ``arviz.compare``.
        """
        import arviz as az

        check_is_fitted(self)
        draws, chains = _check_count(draws, "draws"), _check_count(chains, "chains")
        X, codes, weights = self._encode_data(X, y, sample_weight)
        free, z = self._sample_free(draws * chains, _rng(random_state))
        theta = self._to_likelihood(free)
        log_likelihood = self._pointwise_log_likelihood(theta, X, codes)
        log_p = log_likelihood @ weights + self._log_prior(free)
        log_q = self._gaussian_log_density(z)
        return az.loo_approximate_posterior(
            self._datatree(theta, chains, codes, log_likelihood),
            log_p=log_p.reshape(chains, draws),
            log_q=log_q.reshape(chains, draws),
            pointwise=True,
        )


def _log_sigmoid_inplace(t: np.ndarray) -> np.ndarray:
    r""":math:`\log\sigma(t) = \min(t, 0) - \log(1 + e^{-|t|})`, overwriting ``t``.

    Stable for any t, and about five times faster than ``-np.logaddexp(0, -t)``
    on large arrays because every pass is in place.
    """
    tail = np.abs(t)
    np.negative(tail, out=tail)
    np.exp(tail, out=tail)
    np.log1p(tail, out=tail)
    np.minimum(t, 0.0, out=t)
    t -= tail
    return t


def _laplace_log_evidence(fit: MAPFit) -> float:
    r"""Laplace log evidence of a fit with proper priors.

    :math:`\log p(y \mid \hat\phi) + \log p(\hat\phi) + \tfrac p2 \log 2\pi
    - \sum_j \log L_{jj}` (the last term is :math:`-\tfrac12 \log\lvert H\rvert`).
    """
    objective, params = fit.objective, fit.params
    log_likelihood = -objective.likelihood.loss(objective.to_likelihood(params))
    return (
        log_likelihood
        + log_normal_density(params, objective.scale)
        + 0.5 * len(params) * math.log(2 * math.pi)
        - float(np.sum(np.log(np.diag(fit.cholesky))))
    )
