r"""The penalised negative log-posterior in free (identified) coordinates.

.. math::

    f(\phi) = \ell(T\phi) + \tfrac12 \sum_j \lambda_j \phi_j^2,

with :math:`\ell` the negative log-likelihood (:mod:`problogreg.core.likelihood`),
plus, for the Jeffreys prior, :math:`-\tfrac12\log\lvert I(T\phi)\rvert`
(:mod:`problogreg.core.jeffreys`; its Hessian is left out: the Fisher information
stands for the curvature, as in Firth's own algorithm),
:math:`\lambda` the prior precisions (:mod:`problogreg.core.priors`) and
:math:`T` the linear map from the free parameters :math:`\phi` to the
likelihood's parameters, described by the objective's
:class:`~problogreg.core.layout.ParameterLayout`. Because :math:`T` is linear,
gradient and Hessian pull back as :math:`T^\top g` and :math:`T^\top H T`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from .jeffreys import JeffreysPenalty
from .layout import ParameterLayout
from .likelihood import SoftmaxLikelihood
from .numerics import add_to_diagonal
from .priors import ResolvedPrior
from .woodbury import DualSpace


class PosteriorObjective:
    """Penalised negative log-posterior of a logistic model in free coordinates.

    Parameters
    ----------
    likelihood : SoftmaxLikelihood
    prior : ResolvedPrior

    Attributes
    ----------
    layout : ParameterLayout
        Made here, once: the symmetric model's intercepts are free contrasts
        exactly when their prior is flat.
    scale, precision : ndarray of shape (n_params,)
        Prior sd and precision of every free parameter.
    """

    def __init__(self, likelihood: SoftmaxLikelihood, prior: ResolvedPrior):
        self.likelihood = likelihood
        self.prior = prior
        self.layout = ParameterLayout(
            n_classes=likelihood.n_classes,
            n_features=likelihood.n_features,
            reference=likelihood.reference,
            sum_to_zero=not likelihood.reference and not prior.intercept_is_proper,
        )
        self.n_params = self.layout.n_free
        self.jeffreys = JeffreysPenalty(likelihood) if prior.jeffreys else None
        self.scale = self.layout.free_prior_scale(prior.intercept_scale, prior.coef_scale)
        self.precision = 1.0 / self.scale**2

    def penalty(self, phi: np.ndarray) -> float:
        return 0.5 * float(np.sum(self.precision * phi**2))

    def value(self, phi: np.ndarray) -> float:
        theta = self.layout.to_likelihood(phi)
        value = self.likelihood.loss(theta) + self.penalty(phi)
        return value if self.jeffreys is None else value + self.jeffreys.value(theta)

    def value_gradient(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        theta = self.layout.to_likelihood(phi)
        loss, gradient = self.likelihood.loss_gradient(theta)
        loss += self.penalty(phi)
        if self.jeffreys is not None:
            penalty, penalty_gradient = self.jeffreys.value_gradient(theta)
            loss, gradient = loss + penalty, gradient + penalty_gradient
        return loss, self.layout.from_likelihood(gradient) + self.precision * phi

    def hessian(self, phi: np.ndarray, rows=None) -> np.ndarray:
        """Hessian of f; with ``rows`` (a :class:`~problogreg.core.likelihood.RowSubsample`)
        the likelihood part is estimated from those samples."""
        theta = self.layout.to_likelihood(phi)
        hessian = self.layout.pull_hessian(self.likelihood.hessian(theta, rows))
        return add_to_diagonal(hessian, self.precision)

    @cached_property
    def dual_space(self) -> DualSpace:
        """The dual (Woodbury) form's shared parts, the kernel among them, formed on first
        use and kept: the solver and the Laplace posterior of one fit share them."""
        return DualSpace(self)

    def hessian_product(
        self, phi: np.ndarray, vectors: np.ndarray, *, single: bool = False
    ) -> np.ndarray:
        r""":math:`\nabla^2 f(\phi)\, v = T^\top H_\ell T v + \lambda v` for vectors v
        (q, n_params), without forming the Hessian (likelihood part as :meth:`hessian`;
        ``single``: X read in single precision, see the likelihood's ``hessian_product``)."""
        theta = self.layout.to_likelihood(phi)
        product = self.likelihood.hessian_product(
            theta, self.layout.to_likelihood(vectors), single=single
        )
        return self.layout.from_likelihood(product) + self.precision * vectors

    def hessian_diagonal(self, phi: np.ndarray) -> np.ndarray:
        """The diagonal of :meth:`hessian`, without forming it."""
        theta = self.layout.to_likelihood(phi)
        intercept_block, coef_diagonal = self.likelihood.hessian_blocks_diagonal(theta)
        q = self.layout.contrasts
        if q is not None:
            intercept_block = q.T @ intercept_block @ q
        return np.concatenate([np.diag(intercept_block), coef_diagonal.ravel()]) + self.precision

    def log_likelihood(self, phi: np.ndarray) -> float:
        r"""Weighted log-likelihood :math:`-\ell(T\phi)`."""
        return -self.likelihood.loss(self.layout.to_likelihood(phi))
