r"""Leave-one-out ELPD for every kind of model, as ArviZ ``ELPDDataLOO`` results.

The unit of leave-one-out is a row of the data, with its whole sample weight
:math:`s_i`: leaving row i out divides the posterior by
:math:`p(y_i \mid x_i, \theta)^{s_i}`, and the score is the weighted sum

.. math::

    \mathrm{elpd}_{\mathrm{loo}} = \sum_i s_i \log p(y_i \mid x_i, D_{-i}),

which is the usual :math:`\sum_i \log p(y_i \mid x_i, D_{-i})` for unit weights.

* :func:`psis_loo` -- Pareto-smoothed importance sampling from posterior draws
  (NUTS; the Laplace Gaussian, corrected towards the exact posterior by the
  log ratio :math:`\log p - \log q` of its draws);
* :func:`pointwise_loo` -- exact or approximate pointwise values computed
  otherwise (closed-form refits of the conjugate models, one Newton step for a
  point estimate), with no importance sampling and hence no Pareto k.

Each result carries ``method``, a short description used by ``compare()``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

#: Pareto k above which importance sampling is unreliable (Vehtari et al., 2024).
PARETO_K_LIMIT = 0.7


def pareto_k_threshold(n_draws: int) -> float:
    r""":math:`\min(1 - 1/\log_{10} S, 0.7)` for S draws (Vehtari et al., 2024)."""
    return min(1 - 1 / math.log10(max(n_draws, 11)), PARETO_K_LIMIT)


def smoothed_log_weights(log_ratio: np.ndarray, r_eff: float = 1.0):
    r"""Pareto-smoothed, self-normalised log importance weights and Pareto k.

    Parameters
    ----------
    log_ratio : ndarray of shape (..., S)
        Log importance ratios over the last axis.
    r_eff : float
        Relative efficiency of the draws (1 for independent draws).

    Returns
    -------
    log_weights : ndarray of shape (..., S), with :math:`\operatorname{logsumexp} = 0`
    pareto_k : ndarray of shape (...)
    """
    from arviz_stats.base import array_stats

    # ArviZ's psislw smooths the ratios exp(-input), the convention of PSIS-LOO
    # (input = log-likelihood), so it gets the negated log ratios.
    log_weights, pareto_k = array_stats.psislw(-log_ratio, r_eff=r_eff, axis=-1)
    log_weights = log_weights - special.logsumexp(log_weights, axis=-1, keepdims=True)
    return log_weights, np.asarray(pareto_k)


def weighted_log_mean(log_weights: np.ndarray, log_values: np.ndarray):
    r""":math:`\log \sum_s w_s e^{v_{si}}` for each column of ``log_values`` (S, m), with
    normalised log weights of shape (S,) or (m, S), and the delta-method Monte Carlo
    variance of that log, :math:`\sum_s w_s^2 (e^{v_{si}} / \bar p_i - 1)^2`."""
    log_weights = np.atleast_2d(log_weights)
    if log_weights.shape[0] == 1:
        log_weights = np.broadcast_to(log_weights, (log_values.shape[1], log_values.shape[0]))
    log_mean = special.logsumexp(log_weights + log_values.T, axis=1)
    relative = np.exp(log_values.T - log_mean[:, None]) - 1.0
    variance = np.sum(np.exp(2 * log_weights) * relative**2, axis=1)
    return log_mean, variance


def psis_loo(
    log_likelihood: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    log_correction: np.ndarray | None = None,
    r_eff: float = 1.0,
    method: str = "PSIS-LOO",
):
    r"""PSIS-LOO from the pointwise log-likelihood of S posterior draws.

    The log ratio for leaving row i out is :math:`-s_i \ell_{si} + c_s`, with
    :math:`\ell_{si} = \log p(y_i \mid x_i, \theta_s)` and :math:`c_s` the
    ``log_correction`` (:math:`\log p(\theta_s \mid D) - \log q(\theta_s)` up to a
    constant when the draws come from an approximation q; 0 otherwise). After
    Pareto smoothing, :math:`\mathrm{elpd}_i = \log\sum_s w_{si} e^{\ell_{si}}`.

    Parameters
    ----------
    log_likelihood : ndarray of shape (S, n)
    sample_weight : ndarray of shape (n,), optional
    log_correction : ndarray of shape (S,), optional
    r_eff : float, default=1.0
        Relative efficiency of the draws (MCMC: ESS / S).
    method : str

    Returns
    -------
    LOOResult
        ``elpd_i`` holds :math:`s_i \mathrm{elpd}_i`; ``p`` is the weighted
        full-data lpd minus ``elpd``.
    """
    n_draws, n = log_likelihood.shape
    weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    correction = np.zeros(n_draws) if log_correction is None else np.asarray(log_correction)
    log_ratio = (correction[:, None] - weight * log_likelihood).T
    log_weights, pareto_k = smoothed_log_weights(log_ratio, r_eff)
    elpd_i, variance = weighted_log_mean(log_weights, log_likelihood)
    full_weights = correction - special.logsumexp(correction)
    lpd_i = special.logsumexp(full_weights[:, None] + log_likelihood, axis=0)
    return pointwise_loo(
        weight * elpd_i,
        weight * lpd_i,
        n_samples=n_draws,
        pareto_k=pareto_k,
        approx_posterior=log_correction is not None,
        method=method,
        variance_i=weight**2 * variance / r_eff,
        psis_pareto_k=pareto_k,
        psis_good_k=pareto_k_threshold(n_draws),
    )


def pointwise_loo(
    elpd_i: np.ndarray,
    lpd_i: np.ndarray,
    *,
    n_samples: int,
    method: str,
    pareto_k: np.ndarray | None = None,
    approx_posterior: bool = False,
    variance_i: np.ndarray | None = None,
    psis_pareto_k: np.ndarray | None = None,
    psis_good_k: float | None = None,
):
    r"""An ELPD result from pointwise (already weighted) LOO log predictive densities.

    ``elpd = sum(elpd_i)``, ``se = sqrt(n var(elpd_i))`` (ArviZ's convention) and
    ``p = sum(lpd_i) - elpd``, with ``lpd_i`` the full-data log predictive
    density. Without ``pareto_k`` (no importance sampling) k is 0 everywhere.

    Parameters
    ----------
    elpd_i, lpd_i : ndarray of shape (n,)
    n_samples : int
        Posterior draws behind the values (0 for closed forms, 1 for a point estimate).
    method : str
    pareto_k : ndarray of shape (n,), optional
    approx_posterior : bool
        The draws came from an approximation, corrected by importance weights.
    variance_i : ndarray of shape (n,), optional
        Monte Carlo variances of ``elpd_i`` (None: exact, 0); the square root of
        their sum is ``mcse_elpd``.
    psis_pareto_k : ndarray of shape (n,), optional
        The Pareto k of the PSIS-LOO estimate these values come from or replace
        (see :class:`~problogreg.posterior._loo_result.LOOResult`).
    psis_good_k : float, optional
        The threshold that estimate's k were flagged against.
    """
    import xarray as xr

    from ._loo_result import LOOResult

    n = len(elpd_i)
    coords = {"obs_id": np.arange(n)}
    k = np.zeros(n) if pareto_k is None else pareto_k
    variance_i = np.zeros(n) if variance_i is None else np.asarray(variance_i)
    good_k = pareto_k_threshold(n_samples) if pareto_k is not None else PARETO_K_LIMIT
    return LOOResult(
        elpd=float(np.sum(elpd_i)),
        se=float(np.sqrt(n * np.var(elpd_i))),
        p=float(np.sum(lpd_i) - np.sum(elpd_i)),
        n_samples=n_samples,
        n_data_points=n,
        scale="log",
        warning=bool(np.any(~(k <= good_k))),
        good_k=good_k,
        elpd_i=xr.DataArray(elpd_i, dims=["obs_id"], coords=coords),
        pareto_k=xr.DataArray(k, dims=["obs_id"], coords=coords),
        p_loo_i=xr.DataArray(lpd_i - elpd_i, dims=["obs_id"], coords=coords),
        approx_posterior=approx_posterior,
        method=method,
        mcse_elpd=float(np.sqrt(variance_i.sum())),
        variance_i=variance_i,
        psis_pareto_k=psis_pareto_k,
        psis_good_k=psis_good_k,
    )
