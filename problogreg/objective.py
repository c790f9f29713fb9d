r"""The penalised negative log-posterior in free (identified) coordinates.

.. math::

    f(\phi) = \ell(T\phi) + \tfrac12 \sum_j \lambda_j \phi_j^2,

with :math:`\ell` the negative log-likelihood (:mod:`problogreg.likelihood`),
:math:`\lambda` the prior precisions (:mod:`problogreg.priors`) and :math:`T` a
linear map from the free parameters :math:`\phi` to the likelihood's
parameters. :math:`T` is the identity except for the symmetric multiclass model
with a flat intercept prior, where the K intercepts are only identified up to a
common shift: there :math:`b = Q a` with :math:`Q` (K x K-1) an orthonormal
(Helmert) basis of the sum-to-zero subspace, and the free intercepts are the
K-1 contrasts :math:`a`. Because :math:`T` is linear, gradient and Hessian
pull back as :math:`T^\top g` and :math:`T^\top H T`.

Free parameters are ordered intercepts first, then coefficients row by row.
"""

from __future__ import annotations

import numpy as np

from .likelihood import SoftmaxLikelihood
from .priors import ResolvedPrior


def helmert_basis(n_classes: int) -> np.ndarray:
    """Orthonormal basis (K, K-1) of the vectors whose entries sum to zero."""
    basis = np.zeros((n_classes, n_classes - 1))
    for j in range(1, n_classes):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -j
        basis[:, j - 1] /= np.sqrt(j * (j + 1))
    return basis


class PosteriorObjective:
    """Penalised negative log-posterior of a logistic model in free coordinates.

    Parameters
    ----------
    likelihood : SoftmaxLikelihood
    prior : ResolvedPrior
    """

    def __init__(self, likelihood: SoftmaxLikelihood, prior: ResolvedPrior):
        self.likelihood = likelihood
        self.prior = prior
        m, d = likelihood.n_rows, likelihood.n_features
        self.sum_to_zero = not likelihood.reference and not prior.intercept_is_proper
        self.contrasts = helmert_basis(m) if self.sum_to_zero else None
        self.n_intercepts = m - 1 if self.sum_to_zero else m
        self.n_params = self.n_intercepts + m * d
        self.scale = np.concatenate(
            [np.full(self.n_intercepts, prior.intercept_scale), np.tile(prior.coef_scale, m)]
        )
        self.precision = 1.0 / self.scale**2

    # -- coordinates -------------------------------------------------------
    def to_likelihood(self, phi: np.ndarray) -> np.ndarray:
        """Map free parameters to the likelihood's ``[b, w]`` vector."""
        if not self.sum_to_zero:
            return phi
        return np.concatenate([self.contrasts @ phi[: self.n_intercepts], phi[self.n_intercepts :]])

    def from_likelihood(self, theta: np.ndarray) -> np.ndarray:
        """Project a likelihood parameter vector onto the free coordinates."""
        if not self.sum_to_zero:
            return theta
        m = self.likelihood.n_rows
        return np.concatenate([self.contrasts.T @ theta[:m], theta[m:]])

    def jacobian(self) -> np.ndarray:
        """The matrix T (likelihood parameters x free parameters)."""
        m = self.likelihood.n_rows
        n_lik = self.likelihood.n_params
        jac = np.eye(n_lik)
        if not self.sum_to_zero:
            return jac
        jac = np.zeros((n_lik, self.n_params))
        jac[:m, : m - 1] = self.contrasts
        jac[m:, m - 1 :] = np.eye(n_lik - m)
        return jac

    def _pull_gradient(self, gradient: np.ndarray) -> np.ndarray:
        return self.from_likelihood(gradient)

    def _pull_hessian(self, hessian: np.ndarray) -> np.ndarray:
        if not self.sum_to_zero:
            return hessian
        m, q = self.likelihood.n_rows, self.contrasts
        out = np.empty((self.n_params, self.n_params))
        out[: m - 1, : m - 1] = q.T @ hessian[:m, :m] @ q
        out[: m - 1, m - 1 :] = q.T @ hessian[:m, m:]
        out[m - 1 :, : m - 1] = out[: m - 1, m - 1 :].T
        out[m - 1 :, m - 1 :] = hessian[m:, m:]
        return out

    # -- objective ---------------------------------------------------------
    def penalty(self, phi: np.ndarray) -> float:
        return 0.5 * float(np.sum(self.precision * phi**2))

    def value(self, phi: np.ndarray) -> float:
        return self.likelihood.loss(self.to_likelihood(phi)) + self.penalty(phi)

    def value_gradient(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        loss, gradient = self.likelihood.loss_gradient(self.to_likelihood(phi))
        return loss + self.penalty(phi), self._pull_gradient(gradient) + self.precision * phi

    def hessian(self, phi: np.ndarray, rows=None) -> np.ndarray:
        """Hessian of f; with ``rows`` (a :class:`~problogreg.likelihood.RowSubsample`)
        the likelihood part is estimated from those samples."""
        hessian = self._pull_hessian(self.likelihood.hessian(self.to_likelihood(phi), rows))
        hessian[np.diag_indices_from(hessian)] += self.precision
        return hessian

    def hessian_vector_product(self, phi: np.ndarray):
        product = self.likelihood.hessian_vector_product(self.to_likelihood(phi))

        def free_product(vector: np.ndarray) -> np.ndarray:
            pulled = self._pull_gradient(product(self.to_likelihood(vector)))
            return pulled + self.precision * vector

        return free_product

    # -- results -----------------------------------------------------------
    def intercept_coef(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Intercepts and coefficients in the estimator's stored layout.

        Binary: shapes (1,) and (1, d). Multiclass: (K,) and (K, d), with the
        reference class's row stored as zeros.
        """
        intercept, coef = self.likelihood.unpack(self.to_likelihood(phi))
        if self.likelihood.reference and self.likelihood.n_classes > 2:
            intercept = np.concatenate([[0.0], intercept])
            coef = np.vstack([np.zeros((1, coef.shape[1])), coef])
        return intercept.copy(), coef.copy()
