r"""A Gaussian posterior in precision-factor form: the Laplace approximation's type.

The distribution is :math:`\mathcal N(\mu, H^{-1})` with :math:`H = L L^\top`
(lower Cholesky factor of the precision, e.g. the Hessian of the negative
log-posterior at its mode). Everything is computed from :math:`L`, never from
an explicit inverse:

* draws :math:`x = \mu + L^{-\top} z`, :math:`z \sim \mathcal N(0, I)`;
* log density :math:`\log q(x) = -\tfrac12\lVert L^\top (x - \mu)\rVert^2 - \tfrac p2
  \log 2\pi + \sum_j \log L_{jj}`;
* covariance :math:`\Sigma = L^{-\top} L^{-1}` (symmetric by construction);
* a linear map :math:`A x` has covariance :math:`A \Sigma A^\top = B^\top B`
  with :math:`B = L^{-1} A^\top` (:meth:`GaussianPosterior.covariance_root`),
  which gives predictive moments at any number of rows without a p x p inverse.

Its users need only these operations (draws, log density, marginal sds, the
covariance root of a linear map, the log determinant), so a second
representation -- the low-rank-plus-diagonal (Woodbury) form of a posterior
with more parameters than observations -- can implement the same methods.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg, special

from ..core.numerics import log_softmax
from .woodbury_gaussian import WoodburyGaussianPosterior


class GaussianPosterior:
    r""":math:`\mathcal N(\mu, (L L^\top)^{-1})`.

    Parameters
    ----------
    mean : ndarray of shape (p,)
    precision_cholesky : ndarray of shape (p, p)
        Lower-triangular L with :math:`L L^\top` the precision matrix.

    Examples
    --------
    >>> import numpy as np
    >>> posterior = GaussianPosterior(np.zeros(2), np.diag([2.0, 0.5]))
    >>> posterior.marginal_sd().tolist()
    [0.5, 2.0]
    >>> draws = posterior.sample(20000, np.random.default_rng(0))
    >>> np.round(draws.std(axis=0), 1).tolist()
    [0.5, 2.0]
    """

    def __init__(self, mean: np.ndarray, precision_cholesky: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.precision_cholesky = np.asarray(precision_cholesky, dtype=np.float64)
        if self.precision_cholesky.shape != (len(self.mean), len(self.mean)):
            raise ValueError(
                f"precision_cholesky has shape {self.precision_cholesky.shape}; the mean "
                f"needs ({len(self.mean)}, {len(self.mean)})."
            )

    @property
    def dim(self) -> int:
        return len(self.mean)

    @property
    def noise_dim(self) -> int:
        """Standard normals per draw (:meth:`noise_to_draws`): p."""
        return self.dim

    def noise_to_draws(self, z: np.ndarray) -> np.ndarray:
        r""":math:`\mu + L^{-\top} z` for standard normals z (S, p)."""
        offset = linalg.solve_triangular(
            self.precision_cholesky, z.T, lower=True, trans="T", check_finite=False
        )
        return self.mean + offset.T

    def sample(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """Independent draws, shape (n_draws, p)."""
        return self.noise_to_draws(rng.standard_normal((n_draws, self.dim)))

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Normalised log density at each row of x (S, p), shape (S,)."""
        z = (np.atleast_2d(x) - self.mean) @ self.precision_cholesky
        return self.log_density_of_noise(z)

    def log_density_of_noise(self, z: np.ndarray) -> np.ndarray:
        r"""Log density at the draws made from standard normals z, shape (S,).

        :math:`L^\top (x - \mu) = z`, so no solve is needed.
        """
        return (
            -0.5 * np.sum(z**2, axis=-1)
            - 0.5 * self.dim * math.log(2 * math.pi)
            + 0.5 * self.log_det_precision
        )

    @property
    def log_det_precision(self) -> float:
        r""":math:`\log\lvert H\rvert = 2\sum_j \log L_{jj}`."""
        return 2.0 * float(np.sum(np.log(np.diag(self.precision_cholesky))))

    def covariance_root(self, transform: np.ndarray | None = None) -> np.ndarray:
        r"""B with :math:`A \Sigma A^\top = B^\top B`, shape (p, q), for A (q, p) or I."""
        right = np.eye(self.dim) if transform is None else np.asarray(transform).T
        return linalg.solve_triangular(
            self.precision_cholesky, right, lower=True, check_finite=False
        )

    def covariance(self) -> np.ndarray:
        r""":math:`\Sigma = L^{-\top}L^{-1}`, shape (p, p)."""
        root = self.covariance_root()
        return root.T @ root

    def marginal_sd(self, transform: np.ndarray | None = None) -> np.ndarray:
        r"""Marginal sds of x, or of :math:`A x` for a linear map A (q, p)."""
        root = self.covariance_root(transform)
        return np.sqrt(np.einsum("ij,ij->j", root, root))


def laplace_posterior(result) -> GaussianPosterior | WoodburyGaussianPosterior:
    r""":math:`\mathcal N(\hat\phi, H^{-1})` of a :class:`~problogreg.core.result.MAPResult`:
    in dual form when the solver kept H so (d > n), else from its Cholesky factor.

    Raises
    ------
    ValueError
        When the fit formed no Hessian (the L-BFGS path).
    """
    if result.woodbury is not None:
        return WoodburyGaussianPosterior(result.mode, result.woodbury)
    if result.cholesky is None:
        raise ValueError(
            "This fit has no Hessian (solver='lbfgs', or too many parameters for a dense "
            "Hessian), so it has no Laplace posterior or standard errors. Refit with "
            "solver='newton'."
        )
    return GaussianPosterior(result.mode, result.cholesky)


def logit_moments(posterior: GaussianPosterior, layout, X: np.ndarray, chunk: int = 4096):
    r"""Mean and covariance of the class logits at each row of X under ``posterior``.

    With :math:`B = L^{-1} T^\top` (:meth:`GaussianPosterior.covariance_root`) and
    :math:`B_k` the columns of row k's intercept and coefficients, the logit
    :math:`z_k = b_k + x^\top w_k` has :math:`\mathrm{Cov}(z_k, z_l) = (B_k \tilde
    x)^\top (B_l \tilde x)`, :math:`\tilde x = (1, x)`. Rows of X are processed in
    chunks to bound memory; a reference class's logit is the constant 0.

    Parameters
    ----------
    posterior : GaussianPosterior or WoodburyGaussianPosterior
        Over the free coordinates of ``layout``.
    layout : ParameterLayout
    X : ndarray of shape (n, d)

    Returns
    -------
    mean : ndarray of shape (n, K)
    cov : ndarray of shape (n, K, K)
    """
    if isinstance(posterior, WoodburyGaussianPosterior):
        return posterior.logit_moments(layout, X)
    intercept, coef = layout.class_rows(layout.to_likelihood(posterior.mean))
    mean = X @ coef.T + intercept
    root_intercept, root_coef = layout.unpack(posterior.covariance_root(layout.jacobian()))
    offset = 1 if layout.reference else 0
    n_rows = layout.n_rows
    cov = np.zeros((X.shape[0], layout.n_classes, layout.n_classes))
    for start in range(0, X.shape[0], chunk):
        rows = X[start : start + chunk]
        projected = [rows @ root_coef[:, k, :].T + root_intercept[:, k] for k in range(n_rows)]
        block = cov[start : start + chunk]
        for a in range(n_rows):
            for b in range(a, n_rows):
                value = np.einsum("ij,ij->i", projected[a], projected[b])
                block[:, a + offset, b + offset] = block[:, b + offset, a + offset] = value
    return mean, cov


def moderated_log_proba(mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    r"""Log class probabilities under Gaussian logits, by the pairwise probit approximation.

    Writing the softmax as :math:`p_k = 1 / \sum_j \exp(-(z_k - z_j))` and
    moderating each logit difference like the binary probit approximation gives
    the mean-field approximation of Lu, Ie & Sha (2020, "Mean-field approximation
    to Gaussian-softmax integral"), here with the full variance of each logit
    difference (covariances included, not independent logits):

    .. math::

        \tilde p_k = \Big(\sum_j \exp\big(-\tfrac{\mu_k - \mu_j}
        {\sqrt{1 + \pi v_{kj} / 8}}\big)\Big)^{-1},
        \quad v_{kj} = \mathrm{Var}(z_k - z_j),

        p_k = \tilde p_k / \textstyle\sum_l \tilde p_l.

    For two classes this is exactly :math:`\sigma(\mu / \sqrt{1 + \pi s^2/8})`
    (the normalisation is then a no-op). It depends on logit differences only,
    so a reference class's fixed zero logit is handled like any other.

    Parameters
    ----------
    mean : ndarray of shape (n, K)
        Mean class logits.
    cov : ndarray of shape (n, K, K)
        Covariance of the class logits.
    """
    variance = np.diagonal(cov, axis1=1, axis2=2)
    difference_variance = variance[:, :, None] + variance[:, None, :] - 2.0 * cov
    # Rounding can leave the zero diagonal slightly negative.
    difference_variance = np.maximum(difference_variance, 0.0)
    difference = mean[:, :, None] - mean[:, None, :]
    moderated = difference / np.sqrt(1.0 + np.pi / 8.0 * difference_variance)
    log_unnormalised = -special.logsumexp(-moderated, axis=2)
    return log_softmax(log_unnormalised)
