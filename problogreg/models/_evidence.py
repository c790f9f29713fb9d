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
#: The search's trial fits stop at this tol at most (one more Newton step, at most, than the
#: default 1e-8), so that the evidence is exact to rounding.
EVIDENCE_TRIAL_TOL = 1e-12
#: Bounded search tolerance on log c, and the half-width of the central differences of the
#: Newton step that polishes its result (:func:`maximise_evidence`).
EVIDENCE_SEARCH_XATOL = 1e-4
EVIDENCE_POLISH_STEP = 1e-3
POLISH_ROUNDING = 1e-10


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
    last = {}

    def negative_log_evidence(log_factor: float) -> float:
        prior = dataclasses.replace(base, coef_scale=base.coef_scale * math.exp(log_factor))
        trial_finder = dataclasses.replace(
            finder,
            objective=PosteriorObjective(likelihood, prior),
            tol=min(finder.tol, EVIDENCE_TRIAL_TOL),
        )
        trial = trial_finder.with_hessian(trial_finder.solve(start=warm_start[0]))
        warm_start[0] = trial.mode
        log_evidence = laplace_log_evidence(trial)
        last.update(log_factor=log_factor, result=trial, log_evidence=log_evidence)
        if log_evidence > best["log_evidence"]:
            best.update(last)
        return -log_evidence

    low, high = (math.log(factor) for factor in EVIDENCE_SEARCH_FACTORS)
    found = optimize.minimize_scalar(
        negative_log_evidence,
        bounds=(low, high),
        method="bounded",
        options={"xatol": EVIDENCE_SEARCH_XATOL},
    ).x
    polished = polish_maximum(negative_log_evidence, found, EVIDENCE_POLISH_STEP)
    if low < polished < high:
        negative_log_evidence(polished)
        # Within rounding of the best value seen, the polished point is the maximum: taking
        # it makes the answer independent of which the search happened to rank higher.
        if last["log_evidence"] >= best["log_evidence"] - POLISH_ROUNDING * abs(
            best["log_evidence"]
        ):
            best.update(last)
    return best["result"], math.exp(best["log_factor"])


def polish_maximum(negative, x: float, h: float) -> float:
    r"""One Newton step on a smooth function's minimum from a search's result,
    :math:`x - h\,(f_+ - f_-) / (2(f_+ - 2f_0 + f_-))` with :math:`f_\pm = f(x \pm h)`.

    A bracketing search stops anywhere within its tolerance of a flat minimum, where
    values that differ by rounding (the same data as weights or as repeated rows) steer
    it differently; the step lands within :math:`O(h^2)` of the minimum the same way
    from any such start. x is returned unchanged where the curvature is not positive.
    """
    f_minus, f_zero, f_plus = negative(x - h), negative(x), negative(x + h)
    curvature = f_plus - 2 * f_zero + f_minus
    if not curvature > 0:
        return x
    return x - h * (f_plus - f_minus) / (2 * curvature)
