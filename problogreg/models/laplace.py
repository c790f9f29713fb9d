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
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..core.hessian_form import check_exact_posterior_fits
from ..core.validation import (
    check_count,
    check_probability,
    check_random_state,
    validate_training_data,
)
from ..posterior.arviz_io import coef_intercept_variables
from ..posterior.draws import gaussian_marginal_summary, weighted_draw_summary
from ..posterior.gaussian import laplace_posterior
from ..posterior.refit_loo import (
    RefitProblem,
)
from ._approximation_check import (
    ApproximationCheck,
    laplace_draws,
)
from ._binomial import binomial_rows, check_trials
from ._corrected_posterior import CorrectedPosteriorMixin
from ._evidence import effective_n_params, laplace_log_evidence, maximise_evidence
from ._laplace_loo import laplace_loo
from ._laplace_predictions import GaussianPredictionMixin
from ._marginal_effects import draws_table
from ._posterior_api import check_draws, check_returned_size, draws_datatree
from .map import MAPLogisticRegression

__all__ = ["ApproximationCheck", "LaplaceLogisticRegression", "UndefinedEvidenceError"]

#: A Laplace fit keeps up to four dense p x p matrices (Hessian, Cholesky factor,
#: covariance, and the transient inverse factor); together they must fit the dense
#: Hessian's memory limit (:func:`~problogreg.core.hessian_form.check_exact_posterior_fits`).
LAPLACE_DENSE_MATRICES = 4


class UndefinedEvidenceError(ValueError, AttributeError):
    """The marginal likelihood does not exist: some prior is flat (improper)."""


class LaplaceLogisticRegression(
    GaussianPredictionMixin, CorrectedPosteriorMixin, MAPLogisticRegression
):
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
        :math:`H^{-1}`, formed on access (from the Cholesky factor of ``hessian_``, or
        by solves with the dual form when d > n, where ``hessian_`` is None).
    log_evidence_ : float
        Laplace approximation of :math:`\\log p(y \\mid X)` with the normalised
        prior. Accessing it raises :class:`UndefinedEvidenceError` when a prior is flat.
    effective_n_params_ : float
        :math:`\\gamma = p - \\sum_j \\lambda_j \\Sigma_{jj}` (MacKay's number of
        well-determined parameters; :math:`\\lambda_j` the prior precisions).
    evidence_prior_scale_ : float or ndarray
        Only with ``optimize_prior=True``: the ``prior_scale`` argument that
        maximises the evidence; ``prior_scale_`` holds the resolved scales.
    approximation_check_ : ApproximationCheck
        Only after :meth:`check_approximation`: the importance-sampling check and
        its weighted draws (the corrected posterior).
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
        check_exact_posterior_fits(finder.objective, LAPLACE_DENSE_MATRICES)
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
        if hasattr(self, "approximation_check_"):
            del self.approximation_check_
        self.posterior_ = laplace_posterior(result)
        self.posterior_mean_ = result.mode.copy()
        self._log_evidence = laplace_log_evidence(result) if prior.is_proper else None
        return self

    @property
    def posterior_cov_(self) -> np.ndarray:
        """:math:`H^{-1}` over the free parameters, formed on access (p x p)."""
        check_is_fitted(self)
        return self.posterior_.covariance()

    @property
    def effective_n_params_(self) -> float:
        check_is_fitted(self)
        return effective_n_params(self.result_, self.posterior_.marginal_sd() ** 2)

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

    # -- summaries ---------------------------------------------------------------
    def summary(
        self, ci_prob: float = 0.95, exponentiate: bool = False, method: str = "gaussian"
    ) -> pd.DataFrame:
        """Posterior summary of every coefficient: mean, sd and equal-tailed credible interval.

        Parameters
        ----------
        ci_prob : float, default=0.95
            Probability inside each credible interval.
        exponentiate : bool, default=False
            Summarise the odds ratios :math:`e^{\\theta}` instead: their posterior
            mean and sd (log-normal moments :math:`e^{\\mu + s^2/2}` and
            :math:`e^{\\mu + s^2/2}\\sqrt{e^{s^2} - 1}` under the Gaussian; weighted
            moments of :math:`e^{\\theta_s}` when corrected) and the exponentiated
            interval ends.
        method : {"gaussian", "corrected"}, default="gaussian"
            "gaussian": the Laplace posterior :math:`N(\\hat\\theta, \\Sigma)`: mean
            the MAP, sd :math:`\\sqrt{\\Sigma_{jj}}`, interval
            mean :math:`\\pm \\Phi^{-1}((1 + p)/2)` sd. "corrected": the exact
            posterior as the importance-weighted Laplace draws of
            :meth:`check_approximation` (call it first): weighted mean
            :math:`\\sum_s w_s \\theta_s`, weighted sd, and weighted quantiles
            :math:`(1 \\mp p)/2` for the interval.

        Returns
        -------
        DataFrame indexed by (class, term) with ``mean``, ``sd``, ``ci_lower``,
        ``ci_upper`` (a Bayesian summary: no z or p-values, which belong to the
        MAP/MLE summary of :class:`~problogreg.MAPLogisticRegression`).
        """
        check_is_fitted(self)
        ci_prob = check_probability(ci_prob, "ci_prob")
        layout = self.result_.layout
        if method == "gaussian":
            # The map to likelihood coordinates is the identity unless intercepts are contrasts.
            sd = self.posterior_.marginal_sd(layout.jacobian() if layout.sum_to_zero else None)
            moments = gaussian_marginal_summary(self.result_.theta, sd, ci_prob, exponentiate)
        elif method == "corrected":
            free, log_weights = self._corrected_draws()
            theta = layout.to_likelihood(free)
            theta = np.exp(theta) if exponentiate else theta
            moments = weighted_draw_summary(theta, log_weights, ci_prob)
        else:
            raise ValueError(f"method must be 'gaussian' or 'corrected'; got {method!r}.")
        columns = dict(zip(("mean", "sd", "ci_lower", "ci_upper"), moments, strict=True))
        table = self._coefficient_frame(columns)
        table.attrs["ci_prob"] = ci_prob
        return table

    def _effect_table(self, contrasts, ci_prob=0.95, draws=4000, random_state=0):
        """Marginal effects over ``draws`` draws of the Laplace posterior."""
        predictor = self._draws(check_count(draws, "draws"), random_state)[2]
        return draws_table(predictor, self.classes_, contrasts, ci_prob)

    # -- the posterior protocol ------------------------------------------------
    def sample_posterior(
        self, draws=1000, chains=4, random_state=None, X=None, y=None, trials=None
    ):
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
        trials : array-like, optional
            For a fit on binomial counts (``y`` the successes): one observation per
            group, :math:`\\log \\mathrm{Binomial}(s_g \\mid n_g, p_g)` including the
            binomial coefficient, so that ``arviz.loo`` leaves out a group.

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
        return draws_datatree(self, variables, predictor, chains, X, y, attrs, trials)

    def _refit_problem(self, X, codes, weights) -> RefitProblem:
        return RefitProblem(X, codes, weights, self.result_, self.tol, self.max_iter)

    def loo(self, X, y, sample_weight=None, draws=4000, random_state=0, trials=None, resolve=True):
        """Leave-one-out ELPD of the exact posterior: PSIS-LOO of the Laplace draws,
        corrected by refits where it is unreliable.

        The Gaussian's draws are importance-weighted by :math:`\\log p - \\log q`
        (the exact unnormalised log posterior minus the Gaussian's log density),
        so the leave-one-out weights target the exact posterior's LOO predictive
        (see :func:`~problogreg.posterior.loo.psis_loo`). With ``resolve``, rows
        whose Pareto k exceeds the threshold are refitted (Newton from the mode
        without the row, then importance sampling from that refit's Gaussian
        towards the exact posterior without the row; K-fold when too many rows
        are flagged, see :func:`~problogreg.posterior.refit_loo.resolve_loo`); and
        when refitting every row is cheap (:func:`refits_are_cheap`), every row is
        refitted, which removes the small optimistic bias PSIS has on small data.
        When no importance sampling from a Gaussian reaches the exact posterior (the
        k of :math:`\\log p - \\log q` over the draws, or of a refit, stays above the
        threshold), the estimate becomes the LOO of the Laplace model as it predicts:
        its moderated predictive, refitted without each row (K-fold when not cheap).

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
        resolve : bool, default=True
            False: plain PSIS-LOO, whatever its Pareto k. With ``trials`` (binomial
            groups, left out whole) the estimate is plain PSIS-LOO: refits of groups
            are not implemented.

        Returns
        -------
        LOOResult
            An ``arviz.ELPDDataLOO``, accepted by ``arviz.compare``, with
            ``mcse_elpd`` (the Monte Carlo standard error of ``elpd``).
        """
        check_is_fitted(self)
        check_trials(self, trials)
        X, y, sample_weight, groups = binomial_rows(X, y, sample_weight, trials)
        X, codes, weights = validate_training_data(self, X, y, sample_weight)
        problem = self._refit_problem(X, codes, weights)
        rng = check_random_state(random_state)
        return laplace_loo(self, problem, groups, check_count(draws, "draws"), rng, resolve)
