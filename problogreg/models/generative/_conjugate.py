r"""Conjugate posteriors of the generative classifiers' parameters.

A generative classifier models :math:`p(x, y = k \mid \theta) = \pi_k\,
p(x \mid \theta_k)`. Each family below is conjugate, so its posterior, its
posterior predictive :math:`p(x \mid y = k, D)` and the leave-one-out version
:math:`p(x_i \mid y = k, D_{-i})` are closed forms; removing one sample from the
sufficient statistics is a rank-one *downdate*, so exact leave-one-out costs no
refits.

Every family exposes

* ``sample(rng, size)``: a dict of independent posterior draws, leading axis ``size``;
* ``class_logits(draws, X)``: :math:`\log p(x \mid \theta_k)` for every draw,
  sample and class, shape (S, n, K), up to a term that does not depend on the
  class (it cancels in :math:`p(y \mid x, \theta)`);
* ``linear_logits(draws)``: the implied logistic form ``(W, c)`` with
  :math:`\log p(x \mid \theta_k) = x^\top w_k + c_k + \text{const}(x)`, or None
  when the logit is not linear in x;
* ``log_predictive(X)`` and ``loo_log_predictive(X, y, weight)``: the posterior
  predictive class-conditional log densities, shape (n, K); the leave-one-out
  version removes each row with its whole sample weight :math:`s_i` (for unit
  weights, one observation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, stats
from scipy.special import gammaln, xlogy

from ._statistics import ClassMoments


def student_t_log_density(quad, log_det_scale, dof, kappa, dim: int):
    r"""Log posterior predictive density of a Normal-Inverse-Wishart model.

    For :math:`x \mid \mu, \Sigma \sim N(\mu, \Sigma)` with
    :math:`\mu \mid \Sigma \sim N(m, \Sigma/\kappa)` and
    :math:`\Sigma \sim IW(\Psi, \nu)` in dimension :math:`d`, the predictive is a
    Student-t with :math:`\nu - d + 1` degrees of freedom, location :math:`m` and
    scale :math:`\Psi (\kappa + 1) / (\kappa (\nu - d + 1))`:

    .. math::

        \log p(x) = \log\Gamma\big(\tfrac{\nu + 1}{2}\big)
        - \log\Gamma\big(\tfrac{\nu - d + 1}{2}\big)
        - \tfrac d2 \log\frac{\pi(\kappa + 1)}{\kappa} - \tfrac12 \log\lvert\Psi\rvert
        - \tfrac{\nu + 1}{2} \log\Big(1 + \frac{\kappa\, q}{\kappa + 1}\Big),
        \qquad q = (x - m)^\top \Psi^{-1} (x - m).

    The Normal-Inverse-Gamma case is :math:`d = 1`, :math:`\nu = 2a`, :math:`\Psi = 2b`.
    """
    return (
        gammaln((dof + 1) / 2)
        - gammaln((dof - dim + 1) / 2)
        - dim / 2 * np.log(np.pi * (kappa + 1) / kappa)
        - log_det_scale / 2
        - (dof + 1) / 2 * np.log1p(quad * kappa / (kappa + 1))
    )


# -- class priors -------------------------------------------------------------
@dataclass(frozen=True)
class DirichletPosterior:
    r"""Class probabilities :math:`\pi \mid D \sim \text{Dirichlet}(\alpha_0 + N_k)`.

    Predictive :math:`p(y = k \mid D) = (\alpha_0 + N_k) / (K\alpha_0 + N)`.
    """

    concentration: np.ndarray

    @classmethod
    def from_counts(cls, counts: np.ndarray, prior_concentration: float):
        return cls(prior_concentration + counts)

    def mean(self) -> np.ndarray:
        return self.concentration / self.concentration.sum()

    def sample(self, rng, size: int) -> np.ndarray:
        return rng.dirichlet(self.concentration, size=size)

    def log_predictive(self) -> np.ndarray:
        return np.log(self.mean())

    def loo_log_predictive(self, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """:math:`\\log p(y = k \\mid D_{-i})`, shape (n, K)."""
        held_out = np.eye(len(self.concentration))[y] * weight[:, None]
        total = self.concentration.sum() - weight[:, None]
        return np.log(self.concentration - held_out) - np.log(total)


@dataclass(frozen=True)
class FixedClassPrior:
    """Class probabilities given by the user: no posterior, the same in every draw."""

    probabilities: np.ndarray

    def sample(self, rng, size: int) -> np.ndarray:
        return np.broadcast_to(self.probabilities, (size, len(self.probabilities))).copy()

    def log_predictive(self) -> np.ndarray:
        return np.log(self.probabilities)

    def loo_log_predictive(self, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.log_predictive(), (len(y), len(self.probabilities)))


# -- class-conditional families -------------------------------------------------
class _ConditionalPosterior:
    """Default ``class_logits`` for families whose logit is linear in x."""

    def linear_logits(self, draws):
        return None

    def class_logits(self, draws, X: np.ndarray) -> np.ndarray:
        weights, offsets = self.linear_logits(draws)
        return X @ np.swapaxes(weights, 1, 2) + offsets[:, None, :]


@dataclass(frozen=True)
class NormalInverseWishartPosterior(_ConditionalPosterior):
    r"""Class means with one shared covariance (the Bayesian LDA).

    Prior :math:`\Sigma \sim IW(\Psi_0, \nu_0)`, :math:`\mu_k \mid \Sigma \sim
    N(m_0, \Sigma / \kappa_0)` independently over classes. Posterior:
    :math:`\kappa_k = \kappa_0 + N_k`, :math:`m_k = (\kappa_0 m_0 + N_k \bar x_k) /
    \kappa_k`, :math:`\nu = \nu_0 + N` and

    .. math::

        \Psi = \Psi_0 + \sum_i s_i r_i r_i^\top
        + \sum_k \frac{\kappa_0 N_k}{\kappa_k} (\bar x_k - m_0)(\bar x_k - m_0)^\top.
    """

    means: np.ndarray  # (K, d)
    kappa: np.ndarray  # (K,)
    scale: np.ndarray  # (d, d)
    dof: float

    @classmethod
    def from_moments(cls, moments: ClassMoments, prior_mean, prior_kappa, prior_scale, prior_dof):
        kappa = prior_kappa + moments.counts
        means = (prior_kappa * prior_mean + moments.counts[:, None] * moments.means) / kappa[
            :, None
        ]
        offset = moments.means - prior_mean
        between = (offset.T * (prior_kappa * moments.counts / kappa)) @ offset
        scale = prior_scale + moments.pooled_scatter() + between
        return cls(means, kappa, scale, prior_dof + moments.total)

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    def sample(self, rng, size: int) -> dict:
        r""":math:`\Sigma \sim IW(\Psi, \nu)` (``scipy.stats.invwishart``), then
        :math:`\mu_k = m_k + C z_k / \sqrt{\kappa_k}` with :math:`C C^\top = \Sigma`."""
        d = self.n_features
        covariance = stats.invwishart.rvs(
            df=self.dof, scale=self.scale, size=size, random_state=rng
        )
        covariance = np.reshape(covariance, (size, d, d))
        noise = rng.standard_normal((size, d, len(self.kappa))) / np.sqrt(self.kappa)
        means = self.means + np.swapaxes(np.linalg.cholesky(covariance) @ noise, 1, 2)
        return {"mean": means, "covariance": covariance}

    def linear_logits(self, draws):
        r""":math:`w_k = \Sigma^{-1}\mu_k`, :math:`c_k = -\tfrac12 \mu_k^\top \Sigma^{-1} \mu_k`."""
        means = draws["mean"]
        solved = np.swapaxes(np.linalg.solve(draws["covariance"], np.swapaxes(means, 1, 2)), 1, 2)
        return solved, -0.5 * np.sum(solved * means, axis=2)

    def _whitened(self, X):
        """log|Psi| and C^{-1}(x_i - m_k), shape (n, K, d), with C C^T = Psi (Cholesky)."""
        factor = linalg.cholesky(self.scale, lower=True)
        log_det = 2 * np.sum(np.log(np.diag(factor)))
        centred = X[:, None, :] - self.means[None, :, :]
        whitened = linalg.solve_triangular(
            factor, centred.reshape(-1, self.n_features).T, lower=True
        )
        return log_det, whitened.T.reshape(centred.shape)

    def log_predictive(self, X: np.ndarray) -> np.ndarray:
        log_det, whitened = self._whitened(X)
        quad = np.sum(whitened**2, axis=2)
        return student_t_log_density(quad, log_det, self.dof, self.kappa, self.n_features)

    def loo_log_predictive(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
        r"""Predictive after removing sample i (weight :math:`s`) from its class :math:`c`.

        With :math:`u = x_i - m_c` and :math:`\gamma = \kappa_c / (\kappa_c - s)`:
        :math:`\Psi_{-i} = \Psi - s\gamma u u^\top`, :math:`\nu_{-i} = \nu - s`,
        :math:`\kappa_c \to \kappa_c - s` and :math:`x_i - m_{c,-i} = \gamma u`;
        log-determinant and quadratic forms follow from the matrix determinant
        lemma and Sherman-Morrison, in coordinates whitened by :math:`\Psi`.
        """
        n = len(y)
        log_det, whitened = self._whitened(X)
        rows = np.arange(n)
        gamma = self.kappa[y] / (self.kappa[y] - weight)
        held_out = whitened[rows, y].copy()  # C^{-1} u
        downdate = weight * gamma
        remaining = 1 - downdate * np.sum(held_out**2, axis=1)  # |Psi_{-i}| / |Psi|
        whitened[rows, y] = gamma[:, None] * held_out
        projection = np.einsum("nkd,nd->nk", whitened, held_out)
        quad = np.sum(whitened**2, axis=2) + (downdate / remaining)[:, None] * projection**2
        kappa = np.broadcast_to(self.kappa, (n, len(self.kappa))).copy()
        kappa[rows, y] -= weight
        log_det_loo = (log_det + np.log(remaining))[:, None]
        dof = (self.dof - weight)[:, None]
        return student_t_log_density(quad, log_det_loo, dof, kappa, self.n_features)


@dataclass(frozen=True)
class NormalInverseGammaPosterior(_ConditionalPosterior):
    r"""Independent features per class (the Bayesian Gaussian Naive Bayes).

    Prior per class k and feature j: :math:`\sigma^2_{kj} \sim IG(a_0, b_{0j})`,
    :math:`\mu_{kj} \mid \sigma^2_{kj} \sim N(m_{0j}, \sigma^2_{kj}/\kappa_0)`.
    Posterior: :math:`\kappa_k = \kappa_0 + N_k`, :math:`m_{kj} = (\kappa_0 m_{0j} +
    N_k \bar x_{kj}) / \kappa_k`, :math:`a_k = a_0 + N_k / 2` and
    :math:`b_{kj} = b_{0j} + \tfrac12 \sum_{i: y_i = k} s_i r_{ij}^2
    + \kappa_0 N_k (\bar x_{kj} - m_{0j})^2 / (2\kappa_k)`.
    """

    means: np.ndarray  # (K, d)
    kappa: np.ndarray  # (K,)
    shape: np.ndarray  # (K,)
    rate: np.ndarray  # (K, d)

    @classmethod
    def from_moments(
        cls, moments: ClassMoments, y, prior_mean, prior_kappa, prior_shape, prior_rate
    ):
        counts = moments.counts
        kappa = prior_kappa + counts
        means = (prior_kappa * prior_mean + counts[:, None] * moments.means) / kappa[:, None]
        between = (prior_kappa * counts / kappa)[:, None] * (moments.means - prior_mean) ** 2
        rate = prior_rate + 0.5 * (moments.class_sum_squares(y) + between)
        return cls(means, kappa, prior_shape + counts / 2, rate)

    def sample(self, rng, size: int) -> dict:
        """:math:`\\sigma^2 = b / G` with :math:`G \\sim \\text{Gamma}(a, 1)`, then the mean."""
        gamma = rng.standard_gamma(self.shape[:, None], size=(size, *self.rate.shape))
        variance = self.rate / gamma
        noise = rng.standard_normal(variance.shape)
        return {
            "mean": self.means + noise * np.sqrt(variance / self.kappa[:, None]),
            "variance": variance,
        }

    def class_logits(self, draws, X: np.ndarray) -> np.ndarray:
        r""":math:`\sum_j \log N(x_j; \mu_{kj}, \sigma^2_{kj})` for every draw."""
        mean, variance = draws["mean"][:, None], draws["variance"][:, None]
        squared = (X[None, :, None, :] - mean) ** 2 / variance
        return -0.5 * np.sum(np.log(2 * np.pi * variance) + squared, axis=3)

    def log_predictive(self, X: np.ndarray) -> np.ndarray:
        scale = 2 * self.rate  # (K, d): Psi of the d = 1 NIW form
        quad = (X[:, None, :] - self.means) ** 2 / scale
        density = student_t_log_density(
            quad, np.log(scale), 2 * self.shape[:, None], self.kappa[:, None], 1
        )
        return density.sum(axis=2)

    def loo_log_predictive(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """The one-dimensional case of the Normal-Inverse-Wishart downdate, per feature."""
        n, rows = len(y), np.arange(len(y))
        scale = np.broadcast_to(2 * self.rate, (n, *self.rate.shape)).copy()
        centred = X[:, None, :] - self.means
        gamma = self.kappa[y] / (self.kappa[y] - weight)
        held_out = centred[rows, y]
        scale[rows, y] -= (weight * gamma)[:, None] * held_out**2
        centred[rows, y] = gamma[:, None] * held_out
        kappa = np.broadcast_to(self.kappa, (n, len(self.kappa))).copy()
        kappa[rows, y] -= weight
        dof = np.broadcast_to(2 * self.shape, kappa.shape).copy()
        dof[rows, y] -= weight
        density = student_t_log_density(
            centred**2 / scale, np.log(scale), dof[:, :, None], kappa[:, :, None], 1
        )
        return density.sum(axis=2)


@dataclass(frozen=True)
class BetaPosterior(_ConditionalPosterior):
    r"""Binary features per class (the Bayesian Bernoulli Naive Bayes).

    Prior :math:`p_{kj} \sim \text{Beta}(\beta_0, \beta_0)`; posterior
    :math:`\text{Beta}(\beta_0 + c_{kj}, \beta_0 + N_k - c_{kj})` with
    :math:`c_{kj} = \sum_{i: y_i = k} s_i x_{ij}`. The predictive probability
    :math:`(\beta_0 + c_{kj}) / (2\beta_0 + N_k)` is the Naive Bayes estimate with
    smoothing :math:`\alpha = \beta_0`.
    """

    ones: np.ndarray  # (K, d): beta_0 + c
    zeros: np.ndarray  # (K, d): beta_0 + N_k - c

    @classmethod
    def from_counts(cls, feature_counts, class_counts, prior_count: float):
        return cls(
            prior_count + feature_counts,
            prior_count + class_counts[:, None] - feature_counts,
        )

    def sample(self, rng, size: int) -> dict:
        return {"feature_prob": rng.beta(self.ones, self.zeros, size=(size, *self.ones.shape))}

    def linear_logits(self, draws):
        r""":math:`w_{kj} = \operatorname{logit} p_{kj}`, :math:`c_k = \sum_j \log(1 - p_{kj})`."""
        prob = draws["feature_prob"]
        return np.log(prob) - np.log1p(-prob), np.sum(np.log1p(-prob), axis=2)

    def log_predictive(self, X: np.ndarray) -> np.ndarray:
        return bernoulli_log_density(X, self.ones / (self.ones + self.zeros))

    def loo_log_predictive(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
        rows = np.arange(len(y))
        ones = np.broadcast_to(self.ones, (len(y), *self.ones.shape)).copy()
        zeros = np.broadcast_to(self.zeros, ones.shape).copy()
        ones[rows, y] -= weight[:, None] * X
        zeros[rows, y] -= weight[:, None] * (1 - X)
        return bernoulli_log_density(X, ones / (ones + zeros))


def bernoulli_log_density(X: np.ndarray, prob: np.ndarray) -> np.ndarray:
    r""":math:`\sum_j x_j \log p_{kj} + (1 - x_j)\log(1 - p_{kj})`, shape (n, K).

    ``prob`` has shape (K, d), or (n, K, d) for one set per sample. ``xlogy``
    makes :math:`0 \log 0 = 0`, so probabilities of exactly 0 or 1 (unsmoothed
    estimates) give 0 or :math:`-\infty`, never NaN.
    """
    x = X[:, None, :]
    return np.sum(xlogy(x, prob) + xlogy(1 - x, 1 - prob), axis=2)


# -- the joint model ------------------------------------------------------------
@dataclass(frozen=True)
class GenerativePosterior:
    r"""Posterior of :math:`p(x, y = k \mid \theta) = \pi_k\, p(x \mid \theta_k)`.

    The class probabilities and the class-conditional parameters are independent
    a posteriori, so draws and predictives combine by addition of logs:
    :math:`\log p(x, y = k \mid D) = \log p(y = k \mid D) + \log p(x \mid y = k, D)`.
    """

    class_prior: DirichletPosterior | FixedClassPrior
    conditional: _ConditionalPosterior

    def sample(self, rng, size: int) -> dict:
        return {
            "class_prior": self.class_prior.sample(rng, size),
            **self.conditional.sample(rng, size),
        }

    def class_logits(self, draws, X: np.ndarray) -> np.ndarray:
        """:math:`\\log \\pi_k + \\log p(x_i \\mid \\theta_k)` per draw, shape (S, n, K)."""
        return np.log(draws["class_prior"])[:, None, :] + self.conditional.class_logits(draws, X)

    def implied_linear(self, draws):
        """Per-draw softmax weights ``(W (S, K, d), b (S, K))`` with log pi in b, or None."""
        linear = self.conditional.linear_logits(draws)
        if linear is None:
            return None
        weights, offsets = linear
        return weights, offsets + np.log(draws["class_prior"])

    def log_predictive(self, X: np.ndarray) -> np.ndarray:
        """:math:`\\log p(x_i, y = k \\mid D)`, shape (n, K)."""
        return self.class_prior.log_predictive() + self.conditional.log_predictive(X)

    def loo_log_predictive(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """:math:`\\log p(x_i, y = k \\mid D_{-i})`, row i removed with weight ``weight[i]``,
        shape (n, K)."""
        return self.class_prior.loo_log_predictive(y, weight) + self.conditional.loo_log_predictive(
            X, y, weight
        )
