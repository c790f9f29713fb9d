r"""Where every parameter of the logistic model lives: the one parameter layout.

A model with K classes and d features has ``m`` rows of parameters, each an
intercept :math:`b_k` and coefficients :math:`w_k` (one row per class in the
symmetric softmax, ``m = K``; one per non-reference class otherwise,
``m = K - 1``, class 0 fixed at zero; binary logistic regression is ``K = 2``).
Three coordinate systems describe the same model:

* **likelihood coordinates** :math:`\theta = [b_1..b_m, w_1, .., w_m]`, the
  vector the likelihood evaluates (intercepts first, then coefficient rows);
* **free coordinates** :math:`\phi`, the identified parameters the solver,
  the Laplace Gaussian and NUTS work in. :math:`\theta = T\phi` with :math:`T`
  the identity, except for the symmetric model with a flat intercept prior:
  its K intercepts are only identified up to a common shift, so they are
  :math:`b = Q a` with :math:`Q` (K x K-1) an orthonormal (Helmert) basis of
  the sum-to-zero vectors and :math:`a` the K-1 free contrasts;
* **class rows**: an intercept and a coefficient row for *every* class, the
  reference class's row all zeros. Class logits are
  :math:`z_{ik} = b_k + x_i^\top w_k` for every k, and the estimators' ``coef_``
  and ``intercept_`` are these rows (binary: only the row of ``classes_[1]``).

Every function accepts stacks of parameter vectors (leading axes are draws),
so one layout serves a point estimate and thousands of posterior draws alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


def split_rows(theta: np.ndarray, n_rows: int, n_features: int):
    """Likelihood coordinates (..., m(d+1)) -> intercepts (..., m) and coefficients (..., m, d)."""
    return theta[..., :n_rows], theta[..., n_rows:].reshape(*theta.shape[:-1], n_rows, n_features)


def helmert_basis(n_classes: int) -> np.ndarray:
    """Orthonormal basis (K, K-1) of the vectors whose entries sum to zero."""
    basis = np.zeros((n_classes, n_classes - 1))
    for j in range(1, n_classes):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -j
        basis[:, j - 1] /= np.sqrt(j * (j + 1))
    return basis


@dataclass(frozen=True)
class ParameterLayout:
    """The parameter layout of one logistic model (see the module docstring).

    Parameters
    ----------
    n_classes : int
    n_features : int
    reference : bool
        Class 0 is fixed at zero (always the case for two classes).
    sum_to_zero : bool
        Symmetric model whose intercepts are free contrasts (flat intercept prior).

    Examples
    --------
    >>> import numpy as np
    >>> layout = ParameterLayout(n_classes=3, n_features=2, reference=True, sum_to_zero=False)
    >>> layout.n_free, layout.n_rows
    (6, 2)
    >>> intercept, coef = layout.class_rows(np.arange(6.0))
    >>> intercept.tolist(), coef.tolist()
    ([0.0, 0.0, 1.0], [[0.0, 0.0], [2.0, 3.0], [4.0, 5.0]])
    """

    n_classes: int
    n_features: int
    reference: bool
    sum_to_zero: bool

    def __post_init__(self):
        if self.n_classes == 2 and not self.reference:
            raise ValueError("Two classes always use the reference (logistic) form.")
        if self.sum_to_zero and self.reference:
            raise ValueError("Only the symmetric model has sum-to-zero intercepts.")

    # -- sizes -------------------------------------------------------------
    @property
    def binary(self) -> bool:
        return self.n_classes == 2

    @property
    def n_rows(self) -> int:
        """Rows of parameters in likelihood coordinates: K - 1 (reference) or K."""
        return self.n_classes - 1 if self.reference else self.n_classes

    @property
    def n_intercepts(self) -> int:
        """Free intercepts: the contrasts (K - 1) when they sum to zero, else ``n_rows``."""
        return self.n_rows - 1 if self.sum_to_zero else self.n_rows

    @property
    def n_free(self) -> int:
        return self.n_intercepts + self.n_rows * self.n_features

    @property
    def n_likelihood(self) -> int:
        return self.n_rows * (self.n_features + 1)

    @cached_property
    def contrasts(self) -> np.ndarray | None:
        """Q, the Helmert basis of the sum-to-zero intercepts (None when unused)."""
        return helmert_basis(self.n_rows) if self.sum_to_zero else None

    # -- free <-> likelihood coordinates -------------------------------------
    def to_likelihood(self, phi: np.ndarray) -> np.ndarray:
        r""":math:`\theta = T\phi` for one vector or a stack (..., n_free)."""
        if not self.sum_to_zero:
            return phi
        k = self.n_intercepts
        return np.concatenate([phi[..., :k] @ self.contrasts.T, phi[..., k:]], axis=-1)

    def from_likelihood(self, theta: np.ndarray) -> np.ndarray:
        r""":math:`T^\top\theta`: the projection onto free coordinates (and the
        pull-back of a gradient); the inverse of :meth:`to_likelihood` on its range."""
        if not self.sum_to_zero:
            return theta
        m = self.n_rows
        return np.concatenate([theta[..., :m] @ self.contrasts, theta[..., m:]], axis=-1)

    def jacobian(self) -> np.ndarray:
        """The matrix T, shape (n_likelihood, n_free)."""
        if not self.sum_to_zero:
            return np.eye(self.n_free)
        m = self.n_rows
        jacobian = np.zeros((self.n_likelihood, self.n_free))
        jacobian[:m, : m - 1] = self.contrasts
        jacobian[m:, m - 1 :] = np.eye(self.n_likelihood - m)
        return jacobian

    def pull_hessian(self, hessian: np.ndarray) -> np.ndarray:
        r""":math:`T^\top H T` for a likelihood-coordinate Hessian, without forming T."""
        if not self.sum_to_zero:
            return hessian
        m, q = self.n_rows, self.contrasts
        out = np.empty((self.n_free, self.n_free))
        out[: m - 1, : m - 1] = q.T @ hessian[:m, :m] @ q
        out[: m - 1, m - 1 :] = q.T @ hessian[:m, m:]
        out[m - 1 :, : m - 1] = out[: m - 1, m - 1 :].T
        out[m - 1 :, m - 1 :] = hessian[m:, m:]
        return out

    def free_prior_scale(self, intercept_scale: float, coef_scale: np.ndarray) -> np.ndarray:
        """Prior sd of every free parameter (``inf`` = flat), shape (n_free,).

        The Helmert contrasts are orthonormal, so they keep the intercepts' sd.
        """
        return np.concatenate(
            [np.full(self.n_intercepts, intercept_scale), np.tile(coef_scale, self.n_rows)]
        )

    # -- likelihood coordinates <-> rows ---------------------------------------
    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split likelihood coordinates into intercepts (..., m) and coefficients (..., m, d)."""
        return split_rows(theta, self.n_rows, self.n_features)

    @staticmethod
    def pack(intercept: np.ndarray, coef: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`unpack` for one parameter vector."""
        return np.concatenate([np.ravel(intercept), np.ravel(coef)])

    def class_rows(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Intercepts (..., K) and coefficients (..., K, d) of every class.

        The reference class's row is zeros, so the class logits are
        ``X @ coef.T + intercept`` whatever the parametrisation.
        """
        intercept, coef = self.unpack(theta)
        if not self.reference:
            return intercept, coef
        lead = theta.shape[:-1]
        return (
            np.concatenate([np.zeros((*lead, 1)), intercept], axis=-1),
            np.concatenate([np.zeros((*lead, 1, self.n_features)), coef], axis=-2),
        )

    def estimator_rows(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``intercept_`` (..., 1 or K) and ``coef_`` (..., 1 or K, d) as the estimators store them.

        Binary models keep only the row of ``classes_[1]``; multiclass models
        keep every class (zeros for a reference class).
        """
        intercept, coef = self.class_rows(theta)
        if self.binary:
            return intercept[..., 1:], coef[..., 1:, :]
        return intercept, coef

    def coefficient_index(self, row: int, feature: int) -> int:
        """Position of coefficient (row, feature) in likelihood coordinates."""
        return self.n_rows + row * self.n_features + feature

    # -- names -----------------------------------------------------------------
    def row_classes(self, classes) -> list:
        """Class label of each likelihood row."""
        classes = list(classes)
        return classes[1:] if self.reference else classes

    def likelihood_labels(self, classes, feature_names) -> list[str]:
        """``intercept``/feature names per likelihood parameter (``[class]`` appended
        for more than two classes)."""
        rows = self.row_classes(classes)
        tag = (lambda c: "") if self.binary else (lambda c: f"[{c}]")
        return [f"intercept{tag(c)}" for c in rows] + [
            f"{name}{tag(c)}" for c in rows for name in feature_names
        ]

    def free_labels(self, classes, feature_names) -> list[str]:
        """Names of the free parameters (intercept contrasts named by number)."""
        labels = self.likelihood_labels(classes, feature_names)
        if not self.sum_to_zero:
            return labels
        m = self.n_rows
        return [f"intercept contrast {j + 1}" for j in range(m - 1)] + labels[m:]
