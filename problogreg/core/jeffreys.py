r"""The Jeffreys prior of the logistic model: Firth's bias-reduced estimator as a prior.

The Jeffreys prior is :math:`p(\theta) \propto \lvert I(\theta)\rvert^{1/2}`, with
:math:`I(\theta) = \sum_i s_i\, W_i \otimes a_i a_i^\top` the Fisher information
(:math:`a_i = (1, x_i)`, :math:`W_i = \operatorname{diag}(p_i) - p_i p_i^\top` over
the classes with parameters). For the logit link the Fisher information is the
Hessian of the negative log-likelihood, so
:meth:`~problogreg.core.likelihood.SoftmaxLikelihood.hessian` gives it. Its mode
maximises the penalised likelihood :math:`\ell(\theta) + \tfrac12\log\lvert
I(\theta)\rvert` (Firth, 1993), which is finite even when the classes are
separable and removes the O(1/n) bias of the maximum-likelihood estimate.

The gradient of the penalty follows from
:math:`\partial \log\lvert I\rvert / \partial\theta_j = \operatorname{tr}(I^{-1}
\partial I / \partial\theta_j)`. With :math:`C_i` the m x m matrix
:math:`C_{i,kl} = a_i^\top (I^{-1})_{kl}\, a_i` (blocks of the inverse between
the rows of classes k and l) and :math:`v_{ik} = C_{i,kk} - 2 (C_i p_i)_k`,

.. math::

    \frac{\partial \log\lvert I\rvert}{\partial (b_k, w_k)}
    = \sum_i t_{ik}\, a_i, \qquad t_{ik} = s_i\, p_{ik} \big(v_{ik} - p_i^\top v_i\big),

because :math:`\partial W_i / \partial\eta_{ik}` has entries
:math:`\delta_{ab}\dot p_a - \dot p_a p_b - p_a \dot p_b` with
:math:`\dot p_a = p_a(\delta_{ak} - p_k)`. For two classes :math:`t_i = h_i(1 -
2p_i)` with :math:`h_i` the hat values: Firth's modified score
:math:`\sum_i (y_i - p_i + h_i(\tfrac12 - p_i)) a_i`.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


class JeffreysPenalty:
    r""":math:`-\tfrac12 \log\lvert I(\theta)\rvert` and its gradient, in likelihood coordinates.

    Parameters
    ----------
    likelihood : SoftmaxLikelihood
        Reference parametrisation (the symmetric one has a singular information).
    """

    def __init__(self, likelihood):
        if not likelihood.reference:
            raise ValueError(
                "The Jeffreys prior needs the reference parametrisation: the symmetric "
                "model's Fisher information is singular."
            )
        self.likelihood = likelihood
        self._last = (None, None)

    def _factor(self, theta: np.ndarray):
        """Cholesky factor of I(theta), or None where singular. The last one is kept: the
        line search evaluates the penalty at the point its gradient is then asked for."""
        last_theta, factor = self._last
        if last_theta is not None and np.array_equal(last_theta, theta):
            return factor
        try:
            factor = linalg.cho_factor(
                self.likelihood.hessian(theta), lower=True, check_finite=False
            )
        except linalg.LinAlgError:
            factor = None
        self._last = (np.array(theta, copy=True), factor)
        return factor

    def value(self, theta: np.ndarray) -> float:
        r""":math:`-\tfrac12\log\lvert I(\theta)\rvert` (``inf`` where I is singular)."""
        return _half_log_det(self._factor(theta))

    def value_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The penalty and its gradient (module docstring), shape (n_params,)."""
        likelihood = self.likelihood
        factor = self._factor(theta)
        if factor is None:
            return np.inf, np.zeros_like(theta)
        inverse = linalg.cho_solve(factor, np.eye(len(theta)), check_finite=False)
        m, d = likelihood.n_rows, likelihood.n_features
        X, weight = likelihood.X, likelihood.sample_weight
        proba = likelihood.free_class_probabilities(theta).T  # (n, m)
        rows = [np.r_[k, m + k * d : m + (k + 1) * d] for k in range(m)]
        hat = np.empty((len(weight), m, m))
        for k in range(m):
            for j in range(k, m):
                block = inverse[np.ix_(rows[k], rows[j])]
                # a_i^T B a_i with a_i = (1, x_i), without forming [1, X].
                quadratic = np.einsum("ij,ij->i", X @ block[1:, 1:], X)
                quadratic += X @ (block[0, 1:] + block[1:, 0]) + block[0, 0]
                hat[:, k, j] = hat[:, j, k] = quadratic
        v = np.diagonal(hat, axis1=1, axis2=2) - 2 * np.einsum("nab,nb->na", hat, proba)
        t = weight[:, None] * proba * (v - np.sum(proba * v, axis=1, keepdims=True))
        gradient = likelihood.pack(t.sum(axis=0), t.T @ X)
        return _half_log_det(factor), -0.5 * gradient


def _half_log_det(factor) -> float:
    r""":math:`-\tfrac12\log\lvert I\rvert` from I's Cholesky factor (``inf`` without one)."""
    if factor is None:
        return np.inf
    return -float(np.sum(np.log(np.diag(factor[0]))))
