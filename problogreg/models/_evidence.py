r"""The Laplace approximation of the marginal likelihood, and empirical Bayes with it.

.. math::

    \log p(y \mid X) \approx \log p(y \mid \hat\phi) + \log p(\hat\phi)
    + \tfrac p2 \log 2\pi - \tfrac12 \log\lvert H\rvert,

with :math:`\hat\phi` the MAP, :math:`H` the Hessian of the negative
log-posterior there and :math:`\log p(\hat\phi)` the normalised prior density.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import optimize

from ..core.objective import PosteriorObjective
from ..core.result import MAPResult
from ..posterior.gaussian import laplace_posterior

#: Bounds of the empirical-Bayes search, as factors of the given prior scale.
EVIDENCE_SEARCH_FACTORS = (1e-3, 1e3)


def laplace_log_evidence(result: MAPResult) -> float:
    """Laplace log evidence of a fit whose priors are all proper."""
    posterior = laplace_posterior(result)
    return (
        result.log_posterior
        + 0.5 * len(result.mode) * math.log(2 * math.pi)
        - 0.5 * posterior.log_det_precision
    )


def effective_n_params(result: MAPResult, variances: np.ndarray) -> float:
    r""":math:`\gamma = p - \sum_j \lambda_j \Sigma_{jj}`, MacKay's number of
    well-determined parameters (:math:`\lambda_j` the prior precisions,
    :math:`\Sigma_{jj}` the Laplace posterior ``variances``)."""
    return float(len(result.mode) - np.sum(result.prior_precision * variances))


def maximise_evidence(finder, result: MAPResult) -> tuple[MAPResult, float]:
    r"""Maximise the Laplace evidence over a global factor c of the coefficient scales.

    The scales become :math:`c\,s_j`; the search is Brent's bounded method
    on :math:`\log c`, each evaluation a MAP fit warm-started at the
    previous optimum. The result is never worse than :math:`c = 1`.

    Parameters
    ----------
    finder : ModeFinder
        The mode finder of the fit at c = 1 (its objective carries the data).
    result : MAPResult
        The fit at c = 1, with its Hessian.

    Returns
    -------
    best : MAPResult
    factor : float
        The maximising c.
    """
    likelihood, base = finder.objective.likelihood, result.prior
    # Only the best fit so far is kept: each one holds dense p x p matrices.
    best = {"log_factor": 0.0, "result": result, "log_evidence": laplace_log_evidence(result)}
    warm_start = [result.mode]

    def negative_log_evidence(log_factor: float) -> float:
        prior = dataclasses.replace(base, coef_scale=base.coef_scale * math.exp(log_factor))
        trial_finder = dataclasses.replace(finder, objective=PosteriorObjective(likelihood, prior))
        trial = trial_finder.with_hessian(trial_finder.solve(start=warm_start[0]))
        warm_start[0] = trial.mode
        log_evidence = laplace_log_evidence(trial)
        if log_evidence > best["log_evidence"]:
            best.update(log_factor=log_factor, result=trial, log_evidence=log_evidence)
        return -log_evidence

    low, high = (math.log(factor) for factor in EVIDENCE_SEARCH_FACTORS)
    optimize.minimize_scalar(
        negative_log_evidence, bounds=(low, high), method="bounded", options={"xatol": 1e-4}
    )
    return best["result"], math.exp(best["log_factor"])
