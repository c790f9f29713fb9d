r"""Is the Laplace Gaussian close to the exact posterior? An importance-sampling (PSIS) check.

Draws :math:`\phi_s \sim q = N(\hat\phi, H^{-1})` are weighted by
:math:`r_s = \tilde p(\phi_s \mid y) / q(\phi_s)`, with :math:`\tilde p` the
unnormalised exact posterior; the Pareto shape k of the largest ratios says
whether the Gaussian is close enough for importance sampling to correct it, and
the self-normalised weights give corrected posterior means and sds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..posterior.draws import DrawPredictor
from ..posterior.loo import pareto_k_threshold, smoothed_log_weights


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


def importance_check(
    draws: np.ndarray, log_ratio: np.ndarray, laplace_mean, laplace_sd, names
) -> ApproximationCheck:
    """PSIS of the Laplace draws (S, p) with log ratios (S,): k, ESS, corrected moments."""
    log_weights, pareto_k = smoothed_log_weights(log_ratio)
    weights = np.exp(log_weights)
    mean = weights @ draws
    return ApproximationCheck(
        pareto_k=float(pareto_k),
        ess=float(1.0 / np.sum(weights**2)),
        mean=mean,
        sd=np.sqrt(weights @ (draws - mean) ** 2),
        laplace_mean=np.asarray(laplace_mean),
        laplace_sd=np.asarray(laplace_sd),
        names=list(names),
        n_draws=len(draws),
        threshold=pareto_k_threshold(len(draws)),
    )


def laplace_draws(posterior, layout, n_draws: int, rng: np.random.Generator):
    """Draws of the Laplace Gaussian: free draws (S, p), their standard normals, and a
    :class:`~problogreg.posterior.draws.DrawPredictor` over them."""
    noise = rng.standard_normal((n_draws, posterior.dim))
    free = posterior.noise_to_draws(noise)
    predictor = DrawPredictor.linear(*layout.class_rows(layout.to_likelihood(free)))
    return free, noise, predictor


def laplace_log_ratio(posterior, draws, data, log_prior) -> np.ndarray:
    r"""Log importance ratios :math:`\log \tilde p(\phi_s \mid y) - \log q(\phi_s)` of
    Laplace draws against the exact (unnormalised) posterior.

    Parameters
    ----------
    posterior : GaussianPosterior
    draws : tuple
        ``(free, noise, predictor)`` from :func:`laplace_draws`.
    data : tuple
        ``(X, codes, sample_weight)``, the training data.
    log_prior : ndarray of shape (S,)
        The log prior density of the draws.
    """
    _, noise, predictor = draws
    return predictor.total_log_likelihood(*data) + log_prior - posterior.log_density_of_noise(noise)
