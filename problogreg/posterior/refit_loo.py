r"""Leave-one-out and K-fold ELPD by refitting: the answer where one-shot estimates fail.

Leaving out a set F of rows (each with its whole weight) gives the posterior
:math:`p(\phi \mid D_{-F}) \propto p(\phi \mid D) / \prod_{i \in F} p(y_i \mid x_i, \phi)^{s_i}`.
A refit finds it again:

1. **Mode.** Newton's method on the objective without F, started at the
   full-data mode :math:`\hat\phi` (removing a few rows moves the mode little, so
   this takes a few steps), and the exact Hessian :math:`H_{-F}` there.
2. **Predictive.** For a point estimate, the plug-in
   :math:`\log p(y_i \mid x_i, \hat\phi_{-F})`. For a posterior, S draws of
   the multivariate t with location :math:`\hat\phi_{-F}`, scale :math:`H_{-F}^{-1}`
   and :data:`PROPOSAL_DF` degrees of freedom are importance-weighted towards the
   exact :math:`p(\phi \mid D_{-F})` (Pareto-smoothed, self-normalised weights :math:`w_s`), and

   .. math::

       \log p(y_i \mid x_i, D_{-F}) \approx \log \sum_s w_s\, p(y_i \mid x_i, \phi_s),
       \qquad
       \mathrm{Var} \approx \frac{\sum_s w_s^2 (p_{is} - \bar p_i)^2}{\bar p_i^2}

   (the delta-method Monte Carlo variance of the log of a self-normalised
   estimate). The Pareto k of the weights says whether the refit's Gaussian
   was close enough to the exact posterior of :math:`D_{-F}` for this to hold.

:func:`resolve_loo` replaces the rows a leave-one-out estimate flags as
unreliable by refits, or, when too many are flagged, replaces the whole estimate
by K-fold cross-validation (which scores a different quantity, the ELPD of
models fitted on a fraction (K-1)/K of the data, and says so in its method).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core.likelihood import SoftmaxLikelihood
from ..core.minimize import minimize
from ..core.newton import cholesky_or_explain
from ..core.objective import PosteriorObjective
from .draws import DrawPredictor
from .gaussian import GaussianPosterior, logit_moments, moderated_log_proba
from .loo import pareto_k_threshold, pointwise_loo, smoothed_log_weights, weighted_log_mean

#: Draws of each refit's Gaussian: it is centred on the posterior it proposes for,
#: so far fewer draws are needed than for the full-data PSIS-LOO.
REFIT_DRAWS = 2000

#: K of K-fold cross-validation when too many rows need a refit.
N_FOLDS = 10

#: A refit's proposal is a multivariate t with this many degrees of freedom at its
#: Gaussian's location and scale: its heavier tails keep the importance ratios
#: bounded where the exact posterior is wider or more skewed than the Gaussian (with
#: the Gaussian itself the estimate is slightly optimistic on small data, and
#: unreliable beside near-separation).
PROPOSAL_DF = 4.0

#: Newton steps a refit takes from the full-data mode, for the cost estimate.
REFIT_NEWTON_STEPS = 4

#: What a refit scores: the plug-in of its mode, its Gaussian's moderated predictive
#: (the Laplace model as it predicts), or the exact posterior's predictive.
PREDICTIVES = ("point", "gaussian", "exact")

#: Refit every row (not only the flagged ones) when that costs fewer flops than this.
REFIT_ALL_BUDGET = 2e9


def log_prior_of_draws(objective: PosteriorObjective, free: np.ndarray) -> np.ndarray:
    """Unnormalised log prior density of free draws (S, p) under ``objective``'s prior
    (the Jeffreys prior needs one Fisher information per draw)."""
    if objective.jeffreys is None:
        return -0.5 * (free**2) @ objective.precision
    thetas = objective.layout.to_likelihood(free)
    return np.array([-objective.jeffreys.value(theta) for theta in thetas])


@dataclasses.dataclass(frozen=True)
class RefitProblem:
    r"""A fitted logistic model's training data and mode, from which refits start.

    Attributes
    ----------
    X, codes, weights : validated training data
    result : MAPResult
        The full-data fit (mode, layout, prior).
    tol, max_iter : solver settings of the model
    predictive : {"point", "gaussian", "exact"}
        What a refit scores: :math:`\log p(y_i \mid x_i, \hat\phi_{-F})`; the
        moderated predictive of :math:`N(\hat\phi_{-F}, H_{-F}^{-1})` (see
        :func:`~problogreg.posterior.gaussian.moderated_log_proba`); or the exact
        posterior's predictive by importance sampling (see the module docstring).
    draws : int
        Draws per refit for ``predictive="exact"``.
    """

    X: np.ndarray
    codes: np.ndarray
    weights: np.ndarray
    result: object
    tol: float = 1e-8
    max_iter: int = 100
    predictive: str = "exact"
    draws: int = REFIT_DRAWS

    def __post_init__(self):
        if self.predictive not in PREDICTIVES:
            raise ValueError(f"predictive must be one of {PREDICTIVES}; got {self.predictive!r}.")

    @property
    def n(self) -> int:
        return len(self.codes)

    @property
    def cost_per_refit(self) -> float:
        r"""Flops of one refit: :math:`n p` per draw, or per Newton step and parameter."""
        n, p = self.n, self.result.layout.n_free
        return n * p * (self.draws if self.predictive == "exact" else REFIT_NEWTON_STEPS * p)

    def objective(self, weights: np.ndarray) -> PosteriorObjective:
        """The penalised negative log-posterior of the training data with ``weights``
        (the prior stays the full-data fit's resolved prior)."""
        layout = self.result.layout
        likelihood = SoftmaxLikelihood(
            self.X, self.codes, weights, layout.n_classes, reference=layout.reference
        )
        return PosteriorObjective(likelihood, self.result.prior)

    def refit(self, held_out: np.ndarray, rng):
        """Log predictive densities of the ``held_out`` rows (unweighted), their Monte
        Carlo variances, the refit's Pareto k (0 without importance sampling) and whether
        the refit converged."""
        weights = self.weights.copy()
        weights[held_out] = 0.0
        objective = self.objective(weights)
        solved = minimize(
            objective, self.result.mode, solver="newton", tol=self.tol, max_iter=self.max_iter
        )
        X, codes = self.X[held_out], self.codes[held_out]
        rows = np.arange(len(codes))
        layout = self.result.layout
        exact_zero = np.zeros(len(codes))
        if self.predictive == "point":
            at_mode = DrawPredictor.linear(
                *layout.class_rows(layout.to_likelihood(solved.params[None]))
            )
            return at_mode.pointwise_log_likelihood(X, codes)[0], exact_zero, 0.0, solved.converged
        cholesky = solved.cholesky
        if cholesky is None:
            cholesky = cholesky_or_explain(objective.hessian(solved.params))
        posterior = GaussianPosterior(solved.params, cholesky)
        if self.predictive == "gaussian":
            log_proba = moderated_log_proba(*logit_moments(posterior, layout, X))
            return log_proba[rows, codes], exact_zero, 0.0, solved.converged
        free, log_q = student_t_draws(posterior, self.draws, rng)
        predictor = DrawPredictor.linear(*layout.class_rows(layout.to_likelihood(free)))
        log_target = predictor.total_log_likelihood(self.X, self.codes, weights)
        log_ratio = log_target + log_prior_of_draws(objective, free) - log_q
        log_weights, pareto_k = smoothed_log_weights(log_ratio)
        log_pred, variance = weighted_log_mean(
            log_weights, predictor.pointwise_log_likelihood(X, codes)
        )
        return log_pred, variance, float(pareto_k), solved.converged


def student_t_draws(posterior: GaussianPosterior, n_draws: int, rng, df: float = PROPOSAL_DF):
    r"""Draws of the multivariate t with ``df`` degrees of freedom, location and scale
    those of ``posterior``, and their log densities (up to a constant):
    :math:`\phi = \mu + L^{-\top} t`, :math:`t = z \sqrt{\nu / u}`,
    :math:`z \sim N(0, I)`, :math:`u \sim \chi^2_\nu`, and
    :math:`\log q = -\tfrac{\nu + p}{2} \log(1 + \lVert t\rVert^2 / \nu)`."""
    z = rng.standard_normal((n_draws, posterior.noise_dim))
    t = z * np.sqrt(df / rng.chisquare(df, size=(n_draws, 1)))
    draws = posterior.noise_to_draws(t)
    # (phi - mu)' H (phi - mu) = ||t||^2 for the Cholesky form; from the density for the
    # dual (Woodbury) form, whose noise is not whitened coordinates.
    if posterior.noise_dim == posterior.dim:
        quadratic = np.sum(t**2, axis=1)
    else:
        quadratic = 2 * (posterior.log_density(posterior.mean)[0] - posterior.log_density(draws))
    log_q = -0.5 * (df + posterior.dim) * np.log1p(quadratic / df)
    return draws, log_q


def _folds(codes: np.ndarray, n_folds: int, rng) -> np.ndarray:
    """A fold number per row, classes spread evenly over the folds."""
    order = rng.permutation(len(codes))
    order = order[np.argsort(codes[order], kind="stable")]
    folds = np.empty(len(codes), dtype=int)
    folds[order] = np.arange(len(codes)) % n_folds
    return folds


def refits_are_cheap(problem: RefitProblem) -> bool:
    """Whether refitting every row fits :data:`REFIT_ALL_BUDGET` (n refits of
    :attr:`RefitProblem.cost_per_refit`)."""
    return problem.n * problem.cost_per_refit <= REFIT_ALL_BUDGET


def default_max_refits(n: int) -> int:
    """More flagged rows than this are scored by K-fold instead: beyond it, row-by-row
    refits cost more than :data:`N_FOLDS` fold refits."""
    return max(N_FOLDS, n // 10)


def resolve_loo(
    loo,
    problem: RefitProblem,
    flagged: np.ndarray,
    rng,
    *,
    reason: str,
    max_refits: int | None = None,
    fallback=None,
):
    r"""Replace the flagged rows of a LOO estimate by exact refits, or the estimate by K-fold.

    Parameters
    ----------
    loo : LOOResult
        The one-shot estimate (PSIS-LOO, or the one-step approximation of a point
        estimate); its ``p`` is kept consistent: :math:`p = \mathrm{lpd} - \mathrm{elpd}`.
    problem : RefitProblem
    flagged : ndarray of bool, shape (n,)
        Rows whose one-shot estimate is unreliable.
    rng : numpy Generator
    reason : str
        Why they were flagged, for the method text (e.g. "k > 0.7"). When every row
        is flagged and refitted the method reads "exact LOO: n refits ... (reason)".
    max_refits : int, optional
        Above this many flagged rows, K-fold with :data:`N_FOLDS` folds; default
        :func:`default_max_refits`.
    fallback : (name, callable), optional
        For refits whose own importance sampling is unreliable (k above the
        threshold): ``callable(rows, rng)`` returns what :meth:`RefitProblem.refit`
        returns by another method (e.g. a new MCMC run); ``name`` goes into the method.

    Returns
    -------
    LOOResult
        ``pareto_k`` holds each refitted row's refit k (the fold's k for K-fold);
        ``psis_pareto_k`` and ``psis_good_k`` stay those of ``loo``; ``n_refits`` the
        number of refits; ``warning`` whether any k is still above the limit or a
        refit did not converge; ``mcse_elpd`` the Monte Carlo standard error of the
        refitted part.
    """
    flagged = np.asarray(flagged, dtype=bool)
    n_flagged = int(flagged.sum())
    if n_flagged == 0:
        return loo
    max_refits = default_max_refits(problem.n) if max_refits is None else max_refits
    elpd_i = loo.elpd_i.values.copy()
    lpd_i = elpd_i + loo.p_loo_i.values
    pareto_k = loo.pareto_k.values.copy()
    variance = loo.variance_i.copy()
    unconverged = 0
    if n_flagged == problem.n and n_flagged <= max_refits:
        groups = [np.array([i]) for i in range(problem.n)]
        scored = {
            "point": " of the point estimate",
            "gaussian": " of the Gaussian predictive",
            "exact": ", importance-sampled",
        }[problem.predictive]
        method = f"exact LOO: {problem.n} refits{scored} ({reason})"
    elif n_flagged <= max_refits:
        groups = [np.array([i]) for i in np.flatnonzero(flagged)]
        method = f"{loo.method} + {n_flagged} exact refits ({reason})"
    else:
        folds = _folds(problem.codes, N_FOLDS, rng)
        groups = [np.flatnonzero(folds == f) for f in range(N_FOLDS)]
        method = f"{N_FOLDS}-fold CV (LOO unreliable at {n_flagged} of {problem.n} rows: {reason})"
    good_k = pareto_k_threshold(problem.draws)
    n_fallbacks = 0
    for rows in groups:
        log_pred, var, k, converged = problem.refit(rows, rng)
        if fallback is not None and not k <= good_k:
            log_pred, var, k, converged = fallback[1](rows, rng)
            n_fallbacks += 1
        elpd_i[rows] = problem.weights[rows] * log_pred
        variance[rows] = problem.weights[rows] ** 2 * var
        pareto_k[rows] = k
        unconverged += not converged
    if n_fallbacks:
        method += f"; {n_fallbacks} of the {len(groups)} refits by {fallback[0]}"
    result = pointwise_loo(
        elpd_i,
        lpd_i,
        n_samples=loo.n_samples,
        # A point estimate's refits involve no importance sampling, hence no k.
        pareto_k=pareto_k if problem.predictive == "exact" else None,
        approx_posterior=loo.approx_posterior,
        method=method,
        variance_i=variance,
        psis_pareto_k=loo.psis_pareto_k,
        psis_good_k=loo.psis_good_k,
    )
    return dataclasses.replace(
        result, warning=result.warning or unconverged > 0, n_refits=len(groups)
    )
