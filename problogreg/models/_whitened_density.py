r"""The log posterior density that NUTS samples, in coordinates whitened by the Laplace fit.

NUTS samples :math:`z`, with the free parameters :math:`\phi = \hat\phi + M z` and
:math:`M = L^{-\top}` (:math:`LL^\top = H`, the Hessian of the negative log
posterior at the MAP :math:`\hat\phi`). Under the Laplace approximation
:math:`z \sim \mathcal N(0, I)`, so the sampler sees a nearly isotropic target and
its warm-up has only a step size to find. The density is

.. math::

    \log p(z \mid X, y) = \sum_i s_i \log p(y_i \mid x_i, \theta)
    - \tfrac12 \sum_j \lambda_j \phi_j^2 + \text{const},
    \qquad \theta = T\phi = \hat\theta + B z,\quad B = T M,

(:math:`\lambda` the prior precisions, 0 for a flat prior; the Jacobian
:math:`\lvert M\rvert` is a constant), with gradient

.. math::

    \nabla_z = B^\top \nabla_\theta \log p(y \mid X, \theta) - M^\top (\lambda \circ \phi),
    \qquad \nabla_{b_k} = \sum_i r_{ik},\ \nabla_{w_k} = \sum_i r_{ik} x_i,
    \ r_{ik} = s_i([y_i = k] - p_{ik}).

This is the sampler's hot loop, evaluated by several chains at once in threads:
unlike :class:`~problogreg.core.likelihood.SoftmaxLikelihood`, which reuses
buffers and caches its last point for the Newton solver, every call here owns
its temporaries, so concurrent calls are safe. The binary case takes one
matrix-vector product each way and two transcendental passes over the rows.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..core.numerics import log_softmax


class WhitenedLogDensity:
    r"""Log posterior density and gradient in whitened coordinates (see the module docstring).

    Parameters
    ----------
    objective : PosteriorObjective
        The posterior (data, weights, prior precisions and parameter layout).
    center : ndarray of shape (n_free,)
        :math:`\hat\phi`, the point that ``z = 0`` maps to.
    precision_cholesky : ndarray of shape (n_free, n_free) or None
        :math:`L`; None samples the free coordinates unwhitened (:math:`M = I`).
    """

    def __init__(self, objective, center: np.ndarray, precision_cholesky: np.ndarray | None):
        likelihood, layout = objective.likelihood, objective.layout
        self.layout = layout
        self.dim = layout.n_free
        self.center = np.asarray(center, dtype=np.float64)
        if precision_cholesky is None:
            self.whitening = np.eye(self.dim)
        else:
            self.whitening = linalg.solve_triangular(
                precision_cholesky, np.eye(self.dim), lower=True, trans="T"
            )
        self.precision = objective.precision
        # theta = theta_hat + B z: the map from z to the likelihood's parameters.
        self._to_likelihood = layout.to_likelihood(self.whitening.T).T
        self._center_likelihood = layout.to_likelihood(self.center)
        self.X = np.ascontiguousarray(likelihood.X)
        self.n_rows, self.n_features = layout.n_rows, layout.n_features
        self.reference = layout.reference
        weights = likelihood.sample_weight
        self.weights = None if np.all(weights == 1.0) else weights
        codes = np.asarray(likelihood.y)
        if layout.binary:
            self.weighted_labels = codes.astype(np.float64)
            if self.weights is not None:
                self.weighted_labels *= self.weights
        else:
            self.codes = codes
            self.observed = np.zeros((len(codes), layout.n_classes))
            self.observed[np.arange(len(codes)), codes] = 1.0 if self.weights is None else weights
            self.first_free_class = 1 if self.reference else 0

    def free_parameters(self, z: np.ndarray) -> np.ndarray:
        r""":math:`\phi = \hat\phi + M z`, for one z (n_free,) or a stack (..., n_free)."""
        return self.center + z @ self.whitening.T

    def __call__(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """The log density (up to a constant) and its gradient at z."""
        phi = self.free_parameters(z)
        theta = self._center_likelihood + self._to_likelihood @ z
        intercept, coef = theta[: self.n_rows], theta[self.n_rows :]
        if self.layout.binary:
            log_likelihood, gradient = self._binary(intercept[0], coef)
        else:
            log_likelihood, gradient = self._softmax(intercept, coef.reshape(self.n_rows, -1))
        prior_gradient = self.precision * phi
        value = log_likelihood - 0.5 * float(prior_gradient @ phi)
        return value, gradient @ self._to_likelihood - prior_gradient @ self.whitening

    def _binary(self, intercept: float, coef: np.ndarray) -> tuple[float, np.ndarray]:
        r"""Binary: :math:`\sum_i s_i (y_i\eta_i - \operatorname{softplus}(\eta_i))` with
        :math:`\operatorname{softplus}(\eta) = \max(\eta, 0) + \log(1 + e^{-|\eta|})`."""
        eta = self.X @ coef
        eta += intercept
        tail = np.abs(eta)
        np.negative(tail, out=tail)
        np.exp(tail, out=tail)  # e^{-|eta|}, in (0, 1]: no overflow
        softplus = np.log1p(tail)
        softplus += np.maximum(eta, 0.0)
        # sigma(eta) = 1 / (1 + e^{-|eta|}) for eta >= 0, else e^{-|eta|} / (1 + e^{-|eta|}).
        proba = np.divide(np.where(eta >= 0.0, 1.0, tail), 1.0 + tail)
        if self.weights is None:
            value = float(self.weighted_labels @ eta) - float(softplus.sum())
        else:
            value = float(self.weighted_labels @ eta) - float(self.weights @ softplus)
            proba *= self.weights
        residual = np.subtract(self.weighted_labels, proba, out=proba)
        return value, np.concatenate([[residual.sum()], residual @ self.X])

    def _softmax(self, intercept: np.ndarray, coef: np.ndarray) -> tuple[float, np.ndarray]:
        """Multiclass: the log-softmax of the class logits, the reference class's fixed at 0."""
        free_logits = self.X @ coef.T
        free_logits += intercept
        if self.reference:
            logits = np.zeros((len(free_logits), self.n_rows + 1))
            logits[:, 1:] = free_logits
        else:
            logits = free_logits
        log_proba = log_softmax(logits, axis=1)
        value = float(np.vdot(self.observed, log_proba))
        proba = np.exp(log_proba[:, self.first_free_class :])
        if self.weights is not None:
            proba *= self.weights[:, None]
        residual = np.subtract(self.observed[:, self.first_free_class :], proba, out=proba)
        return value, np.concatenate([residual.sum(axis=0), (residual.T @ self.X).ravel()])
