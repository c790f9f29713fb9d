r"""The log posterior density that NUTS samples, in coordinates whitened by the Laplace fit.

NUTS samples :math:`z`, with the free parameters :math:`\phi = \hat\phi + M z` and
:math:`MM^\top = H^{-1}` (:math:`H` the Hessian of the negative log posterior at the MAP
:math:`\hat\phi`): under the Laplace approximation :math:`z \sim \mathcal N(0, I)`, so
the sampler sees a nearly isotropic target and its warm-up has only a step size to
find. :func:`whitening_for` chooses the form of :math:`M` by cost:

* :class:`DenseWhitening`, :math:`M = L^{-\top}` (:math:`LL^\top = H`), when the
  free parameters are no more than the rows: its two p x p products per evaluation
  cost less than the likelihood's;
* :class:`LowRankWhitening` for wide binary data (more parameters than rows, every
  prior proper): :math:`H = \Lambda + \tilde X^\top W \tilde X` is the prior
  precision plus a rank-n term, and an exact :math:`M` in O(pn) memory and time
  follows from one thin SVD (see the class);
* otherwise the dense factor up to :data:`MAX_DENSE_WHITENING` parameters, then
  :class:`DiagonalWhitening`, :math:`M = \operatorname{diag}(H_{jj})^{-1/2}` from the
  dual (Woodbury) Hessian of the fit.

The density is

.. math::

    \log p(z \mid X, y) = \sum_i s_i \log p(y_i \mid x_i, T\phi)
    - \tfrac12 \sum_j \lambda_j \phi_j^2 + \text{const}

(:math:`\lambda` the prior precisions, 0 for a flat prior; :math:`T` the layout's map
to the likelihood's parameters; the Jacobian :math:`\lvert M\rvert` is a constant),
with gradient

.. math::

    \nabla_z = M^\top \left(T^\top \nabla_\theta - \lambda \circ \phi\right),
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
from scipy import linalg, special

from ..core.numerics import log_softmax

#: Largest number of free parameters whitened by a dense p x p factor (200 MB).
MAX_DENSE_WHITENING = 5000


class DenseWhitening:
    r""":math:`M = L^{-\top}` for the lower Cholesky factor L of the Hessian."""

    def __init__(self, precision_cholesky: np.ndarray):
        identity = np.eye(len(precision_cholesky))
        self.matrix = linalg.solve_triangular(precision_cholesky, identity, lower=True, trans="T")

    def apply(self, z: np.ndarray) -> np.ndarray:
        r""":math:`M z` for z (..., p)."""
        return z @ self.matrix.T

    def apply_transpose(self, gradient: np.ndarray) -> np.ndarray:
        r""":math:`M^\top g`."""
        return gradient @ self.matrix


class DiagonalWhitening:
    r""":math:`M = \operatorname{diag}(m)`, e.g. :math:`m_j = H_{jj}^{-1/2}`."""

    def __init__(self, scale: np.ndarray):
        self.scale = scale

    def apply(self, z: np.ndarray) -> np.ndarray:
        return self.scale * z

    apply_transpose = apply


class LowRankWhitening:
    r"""Exact whitening of :math:`H = \Lambda + A A^\top` (Λ diagonal positive, A p x r).

    With :math:`B = \Lambda^{-1/2} A = U S V^\top` (thin SVD),
    :math:`H = \Lambda^{1/2} (I + U S^2 U^\top) \Lambda^{1/2}` and

    .. math::

        M = \Lambda^{-1/2} \left(I + U \operatorname{diag}(c)\, U^\top\right),
        \qquad c_k = (1 + s_k^2)^{-1/2} - 1,

    satisfies :math:`MM^\top = H^{-1}`; applying M or :math:`M^\top` costs O(pr).
    """

    def __init__(self, prior_precision: np.ndarray, factor: np.ndarray):
        self.prior_scale = 1.0 / np.sqrt(prior_precision)
        basis, singular, _ = linalg.svd(
            self.prior_scale[:, None] * factor, full_matrices=False, check_finite=False
        )
        self.basis = basis
        self.shrink = 1.0 / np.sqrt(1.0 + singular**2) - 1.0

    def _inner(self, v: np.ndarray) -> np.ndarray:
        r""":math:`(I + U \operatorname{diag}(c) U^\top) v` for v (..., p)."""
        return v + ((v @ self.basis) * self.shrink) @ self.basis.T

    def apply(self, z: np.ndarray) -> np.ndarray:
        return self.prior_scale * self._inner(z)

    def apply_transpose(self, gradient: np.ndarray) -> np.ndarray:
        return self._inner(self.prior_scale * gradient)


class WhitenedLogDensity:
    r"""Log posterior density and gradient in whitened coordinates (see the module docstring).

    Parameters
    ----------
    objective : PosteriorObjective
        The posterior (data, weights, prior precisions and parameter layout).
    center : ndarray of shape (n_free,)
        :math:`\hat\phi`, the point that ``z = 0`` maps to.
    whitening : DenseWhitening, LowRankWhitening, DiagonalWhitening or None
        :math:`M` (None: the identity); :func:`whitening_for` chooses it.
    """

    def __init__(self, objective, center: np.ndarray, whitening=None):
        likelihood, layout = objective.likelihood, objective.layout
        self.layout = layout
        self.dim = layout.n_free
        self.center = np.asarray(center, dtype=np.float64)
        self.whitening = whitening
        self.precision = objective.precision
        self.X = np.ascontiguousarray(likelihood.X)
        self.n_rows = layout.n_rows
        self.reference = layout.reference
        weights = likelihood.sample_weight
        self.weights = None if np.all(weights == 1.0) else weights
        codes = np.asarray(likelihood.y)
        if layout.binary:
            self.weighted_labels = codes.astype(np.float64)
            if self.weights is not None:
                self.weighted_labels *= self.weights
        else:
            self.observed = np.zeros((len(codes), layout.n_classes))
            self.observed[np.arange(len(codes)), codes] = 1.0 if self.weights is None else weights
            self.first_free_class = 1 if self.reference else 0

    def free_parameters(self, z: np.ndarray) -> np.ndarray:
        r""":math:`\phi = \hat\phi + M z`, for one z (n_free,) or a stack (..., n_free)."""
        if self.whitening is None:
            return self.center + z
        return self.center + self.whitening.apply(z)

    def __call__(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """The log density (up to a constant) and its gradient at z."""
        phi = self.free_parameters(z)
        theta = self.layout.to_likelihood(phi)
        intercept, coef = theta[: self.n_rows], theta[self.n_rows :]
        if self.layout.binary:
            log_likelihood, gradient = self._binary(intercept[0], coef)
        else:
            log_likelihood, gradient = self._softmax(intercept, coef.reshape(self.n_rows, -1))
        prior_gradient = self.precision * phi
        value = log_likelihood - 0.5 * float(prior_gradient @ phi)
        gradient = self.layout.from_likelihood(gradient) - prior_gradient
        if self.whitening is None:
            return value, gradient
        return value, self.whitening.apply_transpose(gradient)

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


def whitening_for(objective, result):
    """The whitening of the posterior ``objective`` at its MAP fit ``result`` (the
    choice by cost of the module docstring), or None."""
    n_free, n_samples = result.layout.n_free, len(objective.likelihood.y)
    if n_free <= n_samples:
        return DenseWhitening(_dense_factor(objective, result))
    if result.layout.binary and np.all(objective.precision > 0):
        return LowRankWhitening(objective.precision, _binary_curvature_factor(objective, result))
    if n_free <= MAX_DENSE_WHITENING:
        return DenseWhitening(_dense_factor(objective, result))
    if result.woodbury is not None:
        return DiagonalWhitening(1.0 / np.sqrt(result.woodbury.diagonal()))
    return None


def _dense_factor(objective, result) -> np.ndarray:
    """The Cholesky factor of the Hessian at the mode (formed if the solver did not)."""
    if result.cholesky is not None:
        return result.cholesky
    return linalg.cholesky(objective.hessian(result.mode), lower=True)


def is_exact(whitening) -> bool:
    """Whether ``whitening`` is a full :math:`MM^T = H^{-1}` (not only its diagonal)."""
    return isinstance(whitening, DenseWhitening | LowRankWhitening)


def _binary_curvature_factor(objective, result) -> np.ndarray:
    r"""A (p x n) with :math:`AA^\top` the likelihood's Hessian at the mode:
    :math:`A = \tilde X^\top W^{1/2}`, :math:`\tilde X = [1, X]`,
    :math:`W = \operatorname{diag}(s_i p_i (1 - p_i))`."""
    likelihood = objective.likelihood
    intercept, coef = result.mode[0], result.mode[1:]
    proba = special.expit(likelihood.X @ coef + intercept)
    root = np.sqrt(likelihood.sample_weight * proba * (1.0 - proba))
    return np.vstack([root, likelihood.X.T * root])
