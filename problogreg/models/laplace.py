r"""LaplaceLogisticRegression: a Gaussian posterior at the MAP.

The posterior over the free parameters :math:`\phi` (intercepts first, see
:mod:`problogreg.core.layout`) is approximated by

.. math::

    p(\phi \mid X, y) \approx \mathcal N(\hat\phi, H^{-1}), \qquad
    H = \nabla^2 f(\hat\phi) = L L^\top,

with :math:`f` the penalised negative log-posterior, :math:`\hat\phi` its
minimiser and :math:`H` its exact Hessian there (never a quasi-Newton
estimate). The Gaussian is a :class:`~problogreg.posterior.gaussian.GaussianPosterior`
(``posterior_``), which computes everything from :math:`L`; the log evidence
is in :mod:`problogreg.models._evidence`. Draws of ``coef`` and ``intercept``
are :math:`T\phi` in the class-row layout of the estimators (a reference
class's row is zeros; for the symmetric model with a flat intercept prior
every intercept draw sums to zero exactly).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..core.jeffreys import JeffreysPenalty
from ..core.likelihood import SoftmaxLikelihood
from ..core.newton import DENSE_HESSIAN_MAX_BYTES
from ..core.validation import (
    check_count,
    check_random_state,
    feature_names,
    validate_training_data,
)
from ..posterior.arviz_io import coef_intercept_variables
from ..posterior.gaussian import laplace_posterior
from ..posterior.loo import psis_loo
from ._approximation_check import (
    ApproximationCheck,
    importance_check,
    laplace_draws,
    laplace_log_ratio,
)
from ._binomial import binomial_rows, check_trials
from ._evidence import effective_n_params, laplace_log_evidence, maximise_evidence
from ._laplace_predictions import GaussianPredictionMixin
from ._marginal_effects import draws_table
from ._posterior_api import check_draws, check_returned_size, draws_datatree
from .map import MAPLogisticRegression

__all__ = ["ApproximationCheck", "LaplaceLogisticRegression", "UndefinedEvidenceError"]

#: A Laplace fit keeps up to four dense p x p matrices (Hessian, Cholesky factor,
#: covariance, and the transient inverse factor); together they must fit this budget.
LAPLACE_DENSE_MATRICES = 4


class UndefinedEvidenceError(ValueError, AttributeError):
    """The marginal likelihood does not exist: some prior is flat (improper)."""


class LaplaceLogisticRegression(GaussianPredictionMixin, MAPLogisticRegression):
    """Logistic regression with a Gaussian (Laplace) approximation to the posterior.

    The posterior over the free parameters is N(``posterior_mean_``,
    ``posterior_cov_``): the MAP and the inverse of the exact Hessian of the
    penalised negative log-posterior there (see the module docstring).

    Parameters
    ----------
    prior, prior_scale, intercept_prior_scale, autoscale, multiclass, solver, tol, max_iter
        As for :class:`~problogreg.MAPLogisticRegression`. With
        ``solver="lbfgs"`` the exact Hessian is still computed once, at the optimum.
        With ``prior="jeffreys"`` the Gaussian is centred at Firth's estimate with
        the inverse Fisher information as covariance (the O(1) curvature of the
        Jeffreys term is left out against the likelihood's O(n)); the evidence is
        undefined (the prior's normalising constant is unknown), and
        ``check_approximation`` and ``loo`` evaluate the Jeffreys prior at every
        draw (one Fisher information per draw: meant for data of modest size).
    optimize_prior : bool, default=False
        Empirical Bayes: multiply the coefficient prior scales by the global
        factor that maximises the Laplace evidence (a bounded 1-D search on the
        log scale, each step a warm-started MAP fit). Needs proper priors.

    Attributes
    ----------
    posterior_ : GaussianPosterior
        The Laplace posterior over the free parameters.
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
    Others as for :class:`~problogreg.MAPLogisticRegression`: ``result_``,
    ``coef_``, ``intercept_``, ``hessian_``, ``classes_``, ``prior_scale_``, ...

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
        prior="normal",
        prior_scale=2.5,
        intercept_prior_scale=10.0,
        autoscale=True,
        multiclass="auto",
        optimize_prior=False,
        solver="auto",
        tol=1e-8,
        max_iter=100,
    ):
        super().__init__(
            prior=prior,
            prior_scale=prior_scale,
            intercept_prior_scale=intercept_prior_scale,
            autoscale=autoscale,
            multiclass=multiclass,
            solver=solver,
            tol=tol,
            max_iter=max_iter,
        )
        self.optimize_prior = optimize_prior

    # -- fit -----------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, trials=None):
        """Fit the MAP, the exact Hessian there, and the Gaussian posterior.

        Parameters
        ----------
        X, y, sample_weight, trials : the training data, as for
            :meth:`MAPLogisticRegression.fit` (``trials``: binomial counts).

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
        X, y, sample_weight, groups = binomial_rows(X, y, sample_weight, trials)
        finder = self._mode_finder(X, y, sample_weight)
        self._check_problem_size(finder.objective.n_params)
        prior = finder.objective.prior
        if self.optimize_prior and not prior.is_proper:
            raise ValueError(
                "optimize_prior=True maximises the marginal likelihood, which is undefined "
                "under a flat or Jeffreys prior: use prior='normal' and set prior_scale "
                "(without inf entries) and intercept_prior_scale to numbers."
            )
        result = finder.with_hessian(finder.solve())
        if self.optimize_prior:
            result, factor = maximise_evidence(finder, result)
            self.evidence_prior_scale_ = factor * (
                np.asarray(self.prior_scale, dtype=float)
                if np.ndim(self.prior_scale)
                else float(self.prior_scale)
            )
        elif hasattr(self, "evidence_prior_scale_"):
            del self.evidence_prior_scale_
        self._store_result(result, groups)
        result = self.result_
        self.posterior_ = laplace_posterior(result)
        self.posterior_mean_ = result.mode.copy()
        self.posterior_cov_ = self.posterior_.covariance()
        self.effective_n_params_ = effective_n_params(result, self.posterior_cov_)
        self._log_evidence = laplace_log_evidence(result) if prior.is_proper else None
        return self

    @staticmethod
    def _check_problem_size(n_params: int) -> None:
        needed = LAPLACE_DENSE_MATRICES * 8 * n_params**2
        if needed > DENSE_HESSIAN_MAX_BYTES:
            raise MemoryError(
                f"The Laplace posterior over {n_params} parameters (classes x (features + 1)) "
                f"needs {LAPLACE_DENSE_MATRICES} dense {n_params} x {n_params} matrices, "
                f"{needed / 1024**3:.1f} GiB (limit {DENSE_HESSIAN_MAX_BYTES / 1024**3:.0f} "
                "GiB). Reduce the number of features (selection or PCA), or use "
                "MAPLogisticRegression(solver='lbfgs') for a point estimate."
            )

    @property
    def log_evidence_(self) -> float:
        check_is_fitted(self)
        if self._log_evidence is None:
            raise UndefinedEvidenceError(
                "log_evidence_ is undefined: a flat prior (prior_scale=None or "
                "intercept_prior_scale=None) is improper, and the Jeffreys prior's "
                "normalising constant is unknown, so the marginal likelihood p(y | X) is "
                "not available. Give every parameter a proper Gaussian prior to compare "
                "models by evidence."
            )
        return self._log_evidence

    # -- draws -----------------------------------------------------------------
    def _draws(self, n_draws: int, random_state):
        """Free draws (S, p), their standard normals, and a predictor over them."""
        check_is_fitted(self)
        rng = check_random_state(random_state)
        return laplace_draws(self.posterior_, self.result_.layout, n_draws, rng)

    def _log_prior(self, free, X, codes, weights) -> np.ndarray:
        """Log prior density of free draws (S, p); the Jeffreys prior needs the data."""
        if not self.result_.prior.jeffreys:
            return self.result_.log_prior(free)
        layout = self.result_.layout
        likelihood = SoftmaxLikelihood(X, codes, weights, layout.n_classes, reference=True)
        penalty = JeffreysPenalty(likelihood)
        return np.array([-penalty.value(theta) for theta in layout.to_likelihood(free)])

    def _effect_table(self, contrasts, ci_prob=0.95, draws=4000, random_state=0):
        """Marginal effects over ``draws`` draws of the Laplace posterior."""
        predictor = self._draws(check_count(draws, "draws"), random_state)[2]
        return draws_table(predictor, self.classes_, contrasts, ci_prob)

    # -- the posterior protocol ------------------------------------------------
    def sample_posterior(self, draws=1000, chains=4, random_state=None, X=None, y=None):
        """Independent draws from the Laplace posterior as an ArviZ DataTree.

        Parameters
        ----------
        draws, chains : int, default 1000 and 4
            The ``chains x draws`` draws are independent; the chain dimension
            exists so that ArviZ diagnostics apply unchanged.
        random_state : None, int or numpy Generator
        X, y : optional
            Data (usually the training data) whose pointwise log-likelihood
            :math:`\\log p(y_i \\mid x_i, \\theta)` is stored in the
            ``log_likelihood`` group, with ``observed_data`` holding ``y``.

        Returns
        -------
        xarray.DataTree
            ``posterior`` with ``coef`` (chain, draw, feature) or (chain, draw,
            class, feature) and ``intercept`` (chain, draw) or (chain, draw,
            class); a reference class's parameters are stored as zeros.
        """
        draws, chains = check_draws(draws, chains)
        check_is_fitted(self)
        check_returned_size(draws * chains, self.result_.layout.n_likelihood)
        free, _, predictor = self._draws(draws * chains, random_state)
        layout = self.result_.layout
        variables = coef_intercept_variables(*layout.class_rows(layout.to_likelihood(free)))
        attrs = {"inference_library": "problogreg", "method": "laplace"}
        return draws_datatree(self, variables, predictor, chains, X, y, attrs)

    def check_approximation(self, X, y, sample_weight=None, draws=4000, random_state=0):
        """Check the Laplace posterior by Pareto-smoothed importance sampling (PSIS).

        Draws :math:`\\phi_s \\sim q = N(\\hat\\phi, H^{-1})`, weights them by
        :math:`r_s = \\tilde p(\\phi_s \\mid y) / q(\\phi_s)` with
        :math:`\\tilde p` the unnormalised exact posterior, smooths the largest
        ratios, and reports the Pareto shape k of their tail: below the
        threshold the approximation is good and the self-normalised weights give
        corrected posterior means and sds; above it, use NUTS.

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
        """
        check_is_fitted(self)
        draws = check_count(draws, "draws", minimum=100)
        X, codes, weights = validate_training_data(self, X, y, sample_weight)
        sample = self._draws(draws, random_state)
        free = sample[0]
        log_prior = self._log_prior(free, X, codes, weights)
        log_ratio = laplace_log_ratio(self.posterior_, sample, (X, codes, weights), log_prior)
        layout = self.result_.layout
        return importance_check(
            free,
            log_ratio,
            self.posterior_mean_,
            self.posterior_.marginal_sd(),
            layout.free_labels(self.classes_, feature_names(self)),
        )

    def loo(self, X, y, sample_weight=None, draws=4000, random_state=0, trials=None):
        """PSIS-LOO of the Laplace posterior, corrected towards the exact posterior.

        The Gaussian's draws are importance-weighted by :math:`\\log p - \\log q`
        (the exact unnormalised log posterior minus the Gaussian's log density),
        so the leave-one-out weights target the exact posterior's LOO predictive
        (see :func:`~problogreg.posterior.loo.psis_loo`).

        Parameters
        ----------
        X, y : the training data.
        sample_weight : array-like, optional
            The training weights (they define the posterior and weight each row's score).
        draws : int, default=4000
        random_state : None, int or numpy Generator, default=0
        trials : array-like, optional
            For a fit on binomial counts (``y`` the successes): each group is left
            out whole, and its log-likelihood includes the binomial coefficient.

        Returns
        -------
        LOOResult
            An ``arviz.ELPDDataLOO``, accepted by ``arviz.compare``.
        """
        check_is_fitted(self)
        check_trials(self, trials)
        X, y, sample_weight, groups = binomial_rows(X, y, sample_weight, trials)
        X, codes, weights = validate_training_data(self, X, y, sample_weight)
        free, noise, predictor = self._draws(check_count(draws, "draws"), random_state)
        log_likelihood = predictor.pointwise_log_likelihood(X, codes)
        log_p = log_likelihood @ weights + self._log_prior(free, X, codes, weights)
        if groups is not None:
            log_likelihood, weights = groups.grouped(log_likelihood), groups.weights
        return psis_loo(
            log_likelihood,
            weights,
            log_correction=log_p - self.posterior_.log_density_of_noise(noise),
            method="PSIS-LOO of posterior-approximation draws",
        )
