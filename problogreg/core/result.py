r"""The public result of a MAP (or maximum-likelihood) fit.

:class:`MAPResult` is what every model above the solver builds on: the Laplace
posterior takes its mode and Hessian factor, NUTS its mode and covariance as a
starting point and mass matrix, and the evaluation layer its layout. It holds
no training data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import ParameterLayout
from .priors import ResolvedPrior, log_normal_density
from .woodbury import WoodburyHessian


@dataclass(frozen=True)
class MAPResult:
    r"""The mode of :math:`p(\phi \mid X, y)` in free coordinates, and how it was found.

    Attributes
    ----------
    layout : ParameterLayout
        Where each parameter lives (free and likelihood coordinates, class rows).
    prior : ResolvedPrior
        Prior sds after autoscaling (``inf`` = flat).
    mode : ndarray of shape (n_free,)
        :math:`\hat\phi`, intercepts first.
    hessian : ndarray of shape (n_free, n_free) or None
        :math:`H = \nabla^2 f(\hat\phi)` of the penalised negative log-posterior
        f; None on the Hessian-free (L-BFGS) path.
    cholesky : ndarray of shape (n_free, n_free) or None
        Lower Cholesky factor L of H (:math:`H = LL^\top`).
    n_iter : int
        Solver iterations.
    converged : bool
        Whether the gradient and the Newton decrement met the tolerance.
    log_likelihood : float
        Weighted log-likelihood :math:`\sum_i s_i \log p(y_i \mid x_i, \hat\theta)`.
    woodbury : WoodburyHessian or None
        The Hessian in dual (Woodbury) form when the solver took that path (d > n;
        ``hessian`` and ``cholesky`` are then None). It refers to the training X
        (the low-rank form is a function of it).
    deferred_hessian : bool
        The solver kept no Hessian (Newton-CG steps, or binary steps in the span of the
        data); the estimator forms it at the mode when first needed (:attr:`needs_hessian`).
    log_prior_at_mode : float
        The log prior density at the mode: the normalised Gaussian density over the
        parameters with a proper prior, or :math:`\tfrac12\log\lvert I(\hat\theta)
        \rvert` for the Jeffreys prior (unnormalised: Firth's penalty).
    """

    layout: ParameterLayout
    prior: ResolvedPrior
    mode: np.ndarray
    hessian: np.ndarray | None
    cholesky: np.ndarray | None
    n_iter: int
    converged: bool
    log_likelihood: float
    log_prior_at_mode: float
    woodbury: WoodburyHessian | None = None
    deferred_hessian: bool = False

    @property
    def needs_hessian(self) -> bool:
        """Whether an exact Hessian is still to be formed (see ``deferred_hessian``)."""
        return self.deferred_hessian and self.hessian is None and self.woodbury is None

    @property
    def prior_scale(self) -> np.ndarray:
        """Prior sd of every free parameter, shape (n_free,)."""
        return self.layout.free_prior_scale(self.prior.intercept_scale, self.prior.coef_scale)

    @property
    def prior_precision(self) -> np.ndarray:
        r""":math:`\lambda_j = 1/s_j^2` (0 for a flat prior), shape (n_free,)."""
        return 1.0 / self.prior_scale**2

    @property
    def theta(self) -> np.ndarray:
        r"""The mode in likelihood coordinates, :math:`\hat\theta = T\hat\phi`."""
        return self.layout.to_likelihood(self.mode)

    def log_prior(self, phi: np.ndarray) -> np.ndarray | float:
        """Normalised Gaussian log prior density of one free vector or a stack (S, n_free);
        flat entries contribute 0. (The Jeffreys prior depends on the data: see
        :class:`~problogreg.core.jeffreys.JeffreysPenalty`.)"""
        if self.prior.jeffreys:
            raise ValueError("The Jeffreys prior depends on the data: evaluate it with them.")
        return log_normal_density(phi, self.prior_scale)

    @property
    def log_posterior(self) -> float:
        """``log_likelihood`` plus ``log_prior_at_mode`` (the penalised log-likelihood)."""
        return self.log_likelihood + self.log_prior_at_mode
