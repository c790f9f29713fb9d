r"""Logistic and softmax log-likelihood with gradient and Hessian (pure numpy).

One formulation covers every model of the package. With ``m`` rows of
parameters (intercept :math:`b_k`, coefficients :math:`w_k`), the linear
predictor of sample :math:`i` is :math:`\eta_{ik} = b_k + x_i^\top w_k` and the
class logits are

* ``reference=False`` (symmetric softmax, ``m = K``): :math:`z_i = \eta_i`;
* ``reference=True`` (``m = K - 1``): :math:`z_i = (0, \eta_i)`, class 0 is the
  reference.  Binary logistic regression is the case ``K = 2``:
  :math:`p(y=1) = \sigma(\eta)`.

With sample weights :math:`s_i`, the negative log-likelihood, its gradient and
its Hessian are

.. math::

    \ell(\theta) &= -\sum_i s_i \log p_{i y_i},
    \qquad \log p_{ik} = z_{ik} - \operatorname{logsumexp}_j z_{ij},\\
    \partial \ell / \partial w_k &= X^\top r_k, \quad
    \partial \ell / \partial b_k = \textstyle\sum_i r_{ik},
    \quad r_{ik} = s_i (p_{ik} - [y_i = k]),\\
    \partial^2 \ell / \partial w_k \partial w_l^\top &= X^\top \operatorname{diag}(c_{kl}) X,
    \quad c_{kl,i} = s_i\, p_{ik} (\delta_{kl} - p_{il}).

Parameters are flattened intercepts first: ``theta = [b_1..b_m, w_1, .., w_m]``.

Numerical notes: probabilities come from log-sum-exp, never ``log(sigmoid)``;
every weighted Gram matrix is one BLAS ``syrk`` on :math:`\sqrt{c}\,X`, because
each :math:`c_{kl}` has one sign (:math:`c_{kk} \ge 0`, :math:`c_{kl} \le 0`
for :math:`k \ne l`), and nothing of size n x n or n x d x d is formed.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import dsyrk
from scipy.special import logsumexp


def weighted_gram(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""Return :math:`X^\top \operatorname{diag}(w) X` for non-negative weights.

    Computed as one symmetric rank-k update (BLAS ``dsyrk``) of
    :math:`\sqrt{w}\,X`, about 1.6x faster than a general matrix product.
    """
    scaled = np.sqrt(weights)[:, None] * X
    # scaled.T is Fortran-ordered, so BLAS reads it without a copy.
    upper = dsyrk(1.0, scaled.T, trans=0, lower=0)
    return np.triu(upper) + np.triu(upper, 1).T


def class_logits(eta: np.ndarray, reference: bool) -> np.ndarray:
    """Class logits from the linear predictor: prepend the zero reference column."""
    if not reference:
        return eta
    return np.concatenate([np.zeros((eta.shape[0], 1)), eta], axis=1)


def log_proba_from_logits(logits: np.ndarray) -> np.ndarray:
    """Log-softmax by log-sum-exp, stable for logits of any size."""
    return logits - logsumexp(logits, axis=1, keepdims=True)


class SoftmaxLikelihood:
    """Negative log-likelihood of a (multinomial) logistic regression.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Integer class codes in ``0..n_classes-1``.
    sample_weight : ndarray of shape (n_samples,)
    n_classes : int
    reference : bool
        True for the reference parametrisation (class 0 fixed at zero; always
        the case for two classes), False for the symmetric one.
    """

    def __init__(self, X, y, sample_weight, n_classes: int, reference: bool):
        if n_classes == 2 and not reference:
            raise ValueError("Two classes always use the reference (logistic) form.")
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.n_classes = n_classes
        self.reference = reference
        self.n_rows = n_classes - 1 if reference else n_classes
        self.n_features = X.shape[1]
        self.n_params = self.n_rows * (self.n_features + 1)

    # -- parameter layout --------------------------------------------------
    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split ``theta`` into intercepts (m,) and coefficients (m, d)."""
        m = self.n_rows
        return theta[:m], theta[m:].reshape(m, self.n_features)

    @staticmethod
    def pack(intercept: np.ndarray, coef: np.ndarray) -> np.ndarray:
        return np.concatenate([np.ravel(intercept), np.ravel(coef)])

    # -- evaluation --------------------------------------------------------
    def log_proba(self, theta: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """Class log-probabilities (n, K) at ``theta`` for X (default: training X)."""
        intercept, coef = self.unpack(theta)
        X = self.X if X is None else X
        return log_proba_from_logits(class_logits(X @ coef.T + intercept, self.reference))

    def pointwise_log_likelihood(self, theta: np.ndarray) -> np.ndarray:
        """Unweighted :math:`\\log p(y_i | x_i, \\theta)` for every sample, shape (n,)."""
        log_p = self.log_proba(theta)
        return log_p[np.arange(len(self.y)), self.y]

    def _residuals(self, log_p: np.ndarray) -> np.ndarray:
        """r_ik = s_i (p_ik - [y_i = k]) over the free (non-reference) classes."""
        residual = np.exp(log_p)
        residual[np.arange(len(self.y)), self.y] -= 1.0
        residual *= self.sample_weight[:, None]
        return residual[:, 1:] if self.reference else residual

    def loss(self, theta: np.ndarray) -> float:
        """:math:`\\ell(\\theta) = -\\sum_i s_i \\log p_{i y_i}`."""
        return -float(self.sample_weight @ self.pointwise_log_likelihood(theta))

    def loss_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_p = self.log_proba(theta)
        loss = -float(self.sample_weight @ log_p[np.arange(len(self.y)), self.y])
        residual = self._residuals(log_p)
        return loss, self.pack(residual.sum(axis=0), residual.T @ self.X)

    def loss_gradient_hessian(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Loss, gradient and the dense Hessian (n_params, n_params)."""
        log_p = self.log_proba(theta)
        loss = -float(self.sample_weight @ log_p[np.arange(len(self.y)), self.y])
        residual = self._residuals(log_p)
        gradient = self.pack(residual.sum(axis=0), residual.T @ self.X)
        return loss, gradient, self.hessian_from_proba(np.exp(log_p))

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        return self.hessian_from_proba(np.exp(self.log_proba(theta)))

    def hessian_from_proba(self, proba: np.ndarray) -> np.ndarray:
        """Dense Hessian given the class probabilities (n, K) at the current theta."""
        m, d, X, s = self.n_rows, self.n_features, self.X, self.sample_weight
        p = proba[:, 1:] if self.reference else proba
        hessian = np.empty((self.n_params, self.n_params))
        for k in range(m):
            for l in range(k, m):
                if k == l:
                    curvature = s * p[:, k] * (1.0 - p[:, k])
                    gram = weighted_gram(X, curvature)
                else:
                    curvature = -s * p[:, k] * p[:, l]
                    gram = -weighted_gram(X, -curvature)
                rows = slice(m + k * d, m + (k + 1) * d)
                cols = slice(m + l * d, m + (l + 1) * d)
                cross = curvature @ X
                hessian[k, l] = hessian[l, k] = curvature.sum()
                hessian[k, cols] = hessian[cols, k] = cross
                hessian[l, rows] = hessian[rows, l] = cross
                hessian[rows, cols] = gram
                hessian[cols, rows] = gram.T
        return hessian

    def hessian_vector_product(self, theta: np.ndarray):
        """Return ``v -> H(theta) v`` without forming H (for the Hessian-free path)."""
        proba = np.exp(self.log_proba(theta))
        p = proba[:, 1:] if self.reference else proba
        s = self.sample_weight

        def product(vector: np.ndarray) -> np.ndarray:
            d_intercept, d_coef = self.unpack(vector)
            d_eta = self.X @ d_coef.T + d_intercept
            # H v in predictor space: s_i (p_i * u_i - p_i (p_i . u_i)).
            weighted = s[:, None] * p * (d_eta - np.sum(p * d_eta, axis=1, keepdims=True))
            return self.pack(weighted.sum(axis=0), weighted.T @ self.X)

        return product
