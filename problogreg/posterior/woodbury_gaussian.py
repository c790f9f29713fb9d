r"""The Gaussian posterior :math:`\mathcal N(\mu, H^{-1})` with H in dual (Woodbury) form.

The second representation of the Laplace posterior, for more coefficients than
observations (:mod:`problogreg.core.woodbury`): no p x p matrix is formed. It
offers the operations of :class:`~problogreg.posterior.gaussian.GaussianPosterior`:

* draws by the exact sampler of Bhattacharya, Chakraborty & Mallick (2016),
  from :attr:`noise_dim` standard normals per draw;
* log density :math:`-\tfrac12 (x-\mu)^\top H (x-\mu) - \tfrac p2 \log 2\pi
  + \tfrac12\log|H|`, with :math:`\log|H|` by the matrix determinant lemma;
* marginal sds :math:`\sqrt{\mathrm{diag}(H^{-1})}` and the moments of the class
  logits at new rows, from the block inverse of H.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse

#: Dense rows of new data converted at a time for the logit moments (memory bound).
MOMENT_BLOCK_ELEMENTS = 2**22


class WoodburyGaussianPosterior:
    r""":math:`\mathcal N(\mu, H^{-1})`, H a :class:`~problogreg.core.woodbury.WoodburyHessian`.

    Parameters
    ----------
    mean : ndarray of shape (p,)
    hessian : WoodburyHessian
    """

    def __init__(self, mean: np.ndarray, hessian):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.hessian = hessian

    @property
    def dim(self) -> int:
        return len(self.mean)

    @property
    def noise_dim(self) -> int:
        """Standard normals per draw (intercepts, coefficients and the dual coordinates)."""
        return self.hessian.noise_dim

    def noise_to_draws(self, z: np.ndarray) -> np.ndarray:
        """Draws from standard normals z (S, :attr:`noise_dim`)."""
        return self.mean + self.hessian.noise_to_offsets(z)

    def sample(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """Independent draws, shape (n_draws, p)."""
        return self.noise_to_draws(rng.standard_normal((n_draws, self.noise_dim)))

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Normalised log density at each row of x (S, p), shape (S,)."""
        offset = np.atleast_2d(x) - self.mean
        quadratic = np.einsum("sp,sp->s", offset, self.hessian.product(offset))
        return (
            -0.5 * quadratic - 0.5 * self.dim * math.log(2 * math.pi) + 0.5 * self.log_det_precision
        )

    def log_density_of_noise(self, z: np.ndarray) -> np.ndarray:
        """Log density at the draws made from standard normals z, shape (S,)."""
        return self.log_density(self.noise_to_draws(z))

    @property
    def log_det_precision(self) -> float:
        r""":math:`\log|H|` by the matrix determinant lemma."""
        return self.hessian.log_determinant()

    def covariance(self) -> np.ndarray:
        r""":math:`H^{-1}`, shape (p, p): p solves; only for problems where it fits."""
        return self.hessian.solve(np.eye(self.dim))

    def marginal_sd(self, transform: np.ndarray | None = None) -> np.ndarray:
        r"""Marginal sds of x, or of :math:`A x` for a linear map A (q, p) (q solves)."""
        if transform is None:
            return np.sqrt(self.hessian.inverse_diagonal())
        transform = np.atleast_2d(transform)
        return np.sqrt(np.einsum("qp,qp->q", transform, self.hessian.solve(transform)))

    def logit_moments(self, layout, X) -> tuple[np.ndarray, np.ndarray]:
        """Mean (n, K) and covariance (n, K, K) of the class logits at the rows of X
        (see :func:`~problogreg.posterior.gaussian.logit_moments`); X dense or sparse."""
        intercept, coef = layout.class_rows(layout.to_likelihood(self.mean))
        mean = np.asarray(X @ coef.T) + intercept
        offset = 1 if layout.reference else 0
        n_rows = layout.n_rows
        cov = np.zeros((X.shape[0], layout.n_classes, layout.n_classes))
        chunk = max(1, MOMENT_BLOCK_ELEMENTS // max(1, X.shape[1]))
        for start in range(0, X.shape[0], chunk):
            rows = X[start : start + chunk]
            rows = rows.toarray() if sparse.issparse(rows) else rows
            block = self.hessian.linear_predictor_covariance(rows)
            cov[start : start + chunk, offset : offset + n_rows, offset : offset + n_rows] = block
        return mean, cov
