r"""Is the Laplace Gaussian close to the exact posterior? An importance-sampling (PSIS) check.

Draws :math:`\phi_s \sim q = N(\hat\phi, H^{-1})` are weighted by
:math:`r_s = \tilde p(\phi_s \mid y) / q(\phi_s)`, with :math:`\tilde p` the
unnormalised exact posterior; the Pareto shape k of the largest ratios says
whether the Gaussian is close enough for importance sampling to correct it, and
the self-normalised weights give corrected posterior means and sds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..posterior.draws import gaussian_draws as laplace_draws
from ..posterior.draws import weighted_moments
from ..posterior.loo import pareto_k_threshold, smoothed_log_weights

#: The plain Gaussian is usable when the importance-sampling correction moves every
#: mean by at most this many corrected sds ...
MEAN_TOLERANCE_SD = 0.1
#: ... and every sd by at most this fraction (the thresholds of ``agreement()``).
SD_RATIO_TOLERANCE = 0.1

__all__ = ["ApproximationCheck", "importance_check", "laplace_draws", "laplace_log_ratio"]


@dataclass(frozen=True)
class ApproximationCheck:
    """The Laplace posterior used as an importance-sampling proposal for the exact posterior.

    Attributes
    ----------
    pareto_k : float
        Shape of the generalised Pareto fit to the largest importance ratios
        :math:`p(\\phi \\mid y) / q(\\phi)`. Below ``threshold`` the ratios have
        a finite variance in practice and the importance-sampling correction is
        reliable (``correction_reliable``); whether the Gaussian itself is close
        enough is ``gaussian_usable``.
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
    draws : ndarray of shape (S, n_params)
        The Laplace draws of the free parameters ...
    log_weights : ndarray of shape (S,)
        ... and their normalised, Pareto-smoothed log importance weights: the
        corrected posterior as a weighted sample.
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
    draws: np.ndarray = field(repr=False, default=None)
    log_weights: np.ndarray = field(repr=False, default=None)

    @property
    def correction_reliable(self) -> bool:
        """The importance-sampling correction (``mean``, ``sd``, the corrected outputs)
        can be trusted: k below the threshold."""
        return bool(self.pareto_k < self.threshold)

    @property
    def max_mean_shift_sd(self) -> float:
        """Largest |Laplace mean - corrected mean| in corrected posterior sds."""
        return float(np.max(np.abs(self.laplace_mean - self.mean) / self.sd))

    @property
    def max_sd_error(self) -> float:
        """Largest |Laplace sd / corrected sd - 1|."""
        return float(np.max(np.abs(self.laplace_sd / self.sd - 1)))

    @property
    def gaussian_usable(self) -> bool:
        """The plain Gaussian can be used as is: the correction is reliable and moves no
        mean by more than :data:`MEAN_TOLERANCE_SD` sd and no sd by more than
        :data:`SD_RATIO_TOLERANCE` (the thresholds of ``agreement()``)."""
        return (
            self.correction_reliable
            and self.max_mean_shift_sd <= MEAN_TOLERANCE_SD
            and self.max_sd_error <= SD_RATIO_TOLERANCE
        )

    @property
    def verdict(self) -> str:
        k_text = f"Pareto k = {self.pareto_k:.2f}"
        if not self.correction_reliable:
            return (
                f"Gaussian not usable as is, and its importance-sampling correction is "
                f"unreliable ({k_text} >= {self.threshold:.2f}): the posterior is far from "
                "Gaussian; sample the exact posterior with NUTS (PyMCLogisticRegression)."
            )
        shifts = (
            f"the correction moves means by up to {self.max_mean_shift_sd:.2f} sd and sds "
            f"by up to {100 * self.max_sd_error:.0f}% (limits {MEAN_TOLERANCE_SD} sd, "
            f"{100 * SD_RATIO_TOLERANCE:.0f}%)"
        )
        correction = (
            f"the importance-sampling correction is reliable ({k_text} < "
            f"{self.threshold:.2f}, ESS {self.ess:.0f} of {self.n_draws})"
        )
        if self.gaussian_usable:
            return f"Gaussian usable as is: {shifts}; {correction}."
        return (
            f"Gaussian not usable as is: {shifts}; {correction}, so use the corrected "
            "output (summary(method='corrected'), predict_proba(method='corrected')) or NUTS."
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
    mean, sd = weighted_moments(draws, log_weights)
    return ApproximationCheck(
        pareto_k=float(pareto_k),
        ess=float(1.0 / np.sum(np.exp(2 * log_weights))),
        mean=mean,
        sd=sd,
        laplace_mean=np.asarray(laplace_mean),
        laplace_sd=np.asarray(laplace_sd),
        names=list(names),
        n_draws=len(draws),
        threshold=pareto_k_threshold(len(draws)),
        draws=draws,
        log_weights=log_weights,
    )


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
