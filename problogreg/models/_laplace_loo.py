r"""Leave-one-out of a Laplace fit: PSIS of its draws towards the exact posterior,
resolved by refits where that is unreliable (:meth:`LaplaceLogisticRegression.loo`
states the method).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..posterior.gaussian import logit_moments, moderated_log_proba
from ..posterior.loo import pointwise_loo, psis_loo, smoothed_log_weights
from ..posterior.refit_loo import RefitProblem, log_prior_of_draws, refits_are_cheap, resolve_loo
from ._approximation_check import laplace_draws


def laplace_loo(model, problem: RefitProblem, groups, draws: int, rng, resolve: bool):
    """The LOO estimate of :meth:`LaplaceLogisticRegression.loo` for validated data
    (``problem``), binomial ``groups`` (or None), ``draws`` Gaussian draws."""
    X, codes, weights = problem.X, problem.codes, problem.weights
    free, noise, predictor = laplace_draws(model.posterior_, model.result_.layout, draws, rng)
    log_likelihood = predictor.pointwise_log_likelihood(X, codes)
    log_p = log_likelihood @ weights + log_prior_of_draws(problem.objective(weights), free)
    correction = log_p - model.posterior_.log_density_of_noise(noise)
    if groups is not None:
        log_likelihood, weights = groups.grouped(log_likelihood), groups.weights
    loo = psis_loo(
        log_likelihood,
        weights,
        log_correction=correction,
        method="PSIS-LOO of posterior-approximation draws",
    )
    if not resolve or groups is not None:
        # Refits leave out rows; binomial groups are left out whole, not refitted yet.
        return loo
    correction_k = float(smoothed_log_weights(correction)[1])
    if correction_k > loo.good_k:
        reason = f"the Gaussian is too far from the posterior to correct: k = {correction_k:.2f}"
        return gaussian_predictive_loo(model, problem, rng, reason, loo)
    if refits_are_cheap(problem):
        every_row = np.ones(len(codes), dtype=bool)
        resolved = resolve_loo(
            loo, problem, every_row, rng, reason="small data", max_refits=len(codes)
        )
    else:
        flagged = ~(loo.pareto_k.values <= loo.good_k)  # NaN k is unreliable too
        resolved = resolve_loo(loo, problem, flagged, rng, reason=f"k > {loo.good_k:.2f}")
    if resolved.warning:
        reason = (
            "importance sampling unreliable even after refits: max k = "
            f"{float(resolved.pareto_k.max()):.2f}"
        )
        return gaussian_predictive_loo(model, problem, rng, reason, loo)
    return resolved


def gaussian_predictive_loo(model, problem: RefitProblem, rng, reason: str, psis):
    """LOO of the Laplace model as it predicts (its moderated predictive), refitted
    without each row (or by K-fold when that is not cheap): used when no importance
    sampling from a Gaussian reaches the exact posterior. ``psis`` is the PSIS-LOO
    estimate this one replaces (its Pareto k and threshold are kept)."""
    problem = dataclasses.replace(problem, predictive="gaussian")
    moments = logit_moments(model.posterior_, model.result_.layout, problem.X)
    rows = np.arange(problem.n)
    lpd_i = problem.weights * moderated_log_proba(*moments)[rows, problem.codes]
    full = pointwise_loo(
        lpd_i,
        lpd_i,
        n_samples=0,
        method="",
        psis_pareto_k=psis.psis_pareto_k,
        psis_good_k=psis.psis_good_k,
    )
    max_refits = problem.n if refits_are_cheap(problem) else 0
    every_row = np.ones(problem.n, dtype=bool)
    return resolve_loo(full, problem, every_row, rng, reason=reason, max_refits=max_refits)
