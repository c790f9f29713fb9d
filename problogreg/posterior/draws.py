r"""Predictions from posterior draws: one implementation for every Bayesian model.

Given S draws :math:`\theta^{(s)}` and a function that maps a block of rows of
X to the class logits :math:`z^{(s)}_{ik}` of every draw, :class:`DrawPredictor`
computes

* the posterior predictive :math:`\bar p_{ik} = \frac1S \sum_s
  \operatorname{softmax}_k z^{(s)}_i` (in log space: a log-sum-exp over draws);
* equal-tailed intervals of :math:`p(y = k \mid x_i, \theta)` over the draws;
* the pointwise log-likelihood :math:`\log p(y_i \mid x_i, \theta^{(s)})`, the
  input of PSIS-LOO, and its weighted sum per draw;
* labels drawn from the posterior predictive.

Rows are processed in blocks so that no (draws x rows x classes) array exceeds
:data:`BLOCK_ELEMENTS` numbers, whatever the size of the data. The Laplace and
NUTS posteriors and the linear-logit generative posteriors use
:meth:`DrawPredictor.linear`; a model whose logits are not linear in x (Gaussian
Naive Bayes) passes its own logit function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from scipy import special, stats

from ..core.numerics import log_sigmoid, log_softmax

#: Largest number of floats in one block of per-draw, per-row values.
BLOCK_ELEMENTS = 2**22


def draw_quantiles(values: np.ndarray, probs, log_weights: np.ndarray | None = None):
    """Quantiles over the first axis (draws) of ``values``, weighted by
    ``exp(log_weights)`` when given (inverse of the weighted empirical CDF)."""
    if log_weights is None:
        return np.quantile(values, probs, axis=0)
    weights = np.exp(log_weights)
    return np.quantile(values, probs, axis=0, weights=weights, method="inverted_cdf")


def weighted_draw_summary(values: np.ndarray, log_weights: np.ndarray, ci_prob: float):
    r"""Mean, sd and equal-tailed interval over the first axis (draws) of ``values``
    weighted by :math:`w_s = e^{\ell_s}` (normalised log weights :math:`\ell`): the
    :func:`weighted_moments` and the weighted quantiles :math:`(1 \mp p)/2`
    (:func:`draw_quantiles`).

    Returns
    -------
    mean, sd, lower, upper : ndarrays of ``values.shape[1:]``
    """
    mean, sd = weighted_moments(values, log_weights)
    lower, upper = draw_quantiles(values, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], log_weights)
    return mean, sd, lower, upper


def weighted_moments(values: np.ndarray, log_weights: np.ndarray):
    r"""Weighted mean :math:`\bar v = \sum_s w_s v_s` and sd
    :math:`\sqrt{\sum_s w_s (v_s - \bar v)^2}` over the first axis of ``values``, for
    normalised log weights (:math:`w_s = e^{\ell_s}`)."""
    weights = np.exp(log_weights)
    mean = weights @ values
    return mean, np.sqrt(weights @ (values - mean) ** 2)


def normal_interval(mean, sd, prob: float) -> np.ndarray:
    r"""The equal-tailed ``prob`` interval of :math:`N(\mu, s^2)`,
    :math:`\mu \mp \Phi^{-1}((1 + p)/2)\, s`, as an array ``[lower, upper]``."""
    half_width = stats.norm.ppf(0.5 + prob / 2) * np.asarray(sd)
    return np.stack([mean - half_width, mean + half_width])


def gaussian_marginal_summary(mean: np.ndarray, sd: np.ndarray, ci_prob: float, exponentiate: bool):
    r"""Mean, sd and equal-tailed interval of independent Gaussian marginals
    :math:`N(\mu_j, s_j^2)`: the interval :math:`\mu \pm \Phi^{-1}((1 + p)/2)\, s`.
    With ``exponentiate``, of :math:`e^{\theta_j}` instead (log-normal): mean
    :math:`e^{\mu + s^2/2}`, sd :math:`e^{\mu + s^2/2}\sqrt{e^{s^2} - 1}`, the interval's
    ends exponentiated.

    Returns
    -------
    mean, sd, lower, upper : ndarrays of the shape of ``mean``
    """
    lower, upper = normal_interval(mean, sd, ci_prob)
    if not exponentiate:
        return mean, sd, lower, upper
    odds_mean = np.exp(mean + sd**2 / 2)
    return odds_mean, odds_mean * np.sqrt(np.expm1(sd**2)), np.exp(lower), np.exp(upper)


class DrawPredictor:
    """Predictions averaged over posterior draws.

    Parameters
    ----------
    class_logits : callable
        ``class_logits(X_block)`` returns the logits of every draw, shape
        (n_draws, rows, n_classes).
    n_draws, n_classes : int
    numbers_per_logit : int, default=1
        Working numbers ``class_logits`` needs per (draw, row, class); sets the block size.
    log_weights : ndarray of shape (n_draws,), optional
        Normalised log importance weights of the draws (e.g. Laplace draws corrected
        towards the exact posterior); None: equal weights.

    Examples
    --------
    >>> import numpy as np
    >>> intercept = np.zeros((2, 2))
    >>> coef = np.array([[[0.0], [1.0]], [[0.0], [3.0]]])  # two draws, binary, one feature
    >>> predictor = DrawPredictor.linear(intercept, coef)
    >>> proba = np.exp(predictor.mean_log_proba(np.array([[0.0], [1.0]])))
    >>> np.round(proba[:, 1], 3).tolist()
    [0.5, 0.842]
    """

    def __init__(
        self,
        class_logits: Callable[[np.ndarray], np.ndarray],
        n_draws: int,
        n_classes: int,
        numbers_per_logit: int = 1,
        log_weights: np.ndarray | None = None,
    ):
        self.class_logits = class_logits
        self.n_draws = n_draws
        self.log_weights = log_weights
        self.n_classes = n_classes
        self.numbers_per_logit = numbers_per_logit
        self._binary_predictor = None

    @classmethod
    def linear(
        cls, intercept: np.ndarray, coef: np.ndarray, log_weights: np.ndarray | None = None
    ) -> DrawPredictor:
        r"""Draws of a softmax model with logits :math:`b^{(s)}_k + x^\top w^{(s)}_k`.

        Parameters
        ----------
        intercept : ndarray of shape (S, K)
        coef : ndarray of shape (S, K, d)
            Every class's row (a reference class's row is zeros).
        log_weights : ndarray of shape (S,), optional
            Normalised log importance weights of the draws.
        """
        n_draws, n_classes, n_features = coef.shape
        # One BLAS product per block: (draws * classes, d) @ (d, rows).
        stacked = np.ascontiguousarray(coef.reshape(n_draws * n_classes, n_features))

        def logits(X: np.ndarray) -> np.ndarray:
            products = (stacked @ X.T).reshape(n_draws, n_classes, -1)
            return products.transpose(0, 2, 1) + intercept[:, None, :]

        predictor = cls(logits, n_draws, n_classes, log_weights=log_weights)
        if n_classes == 2:
            # The log-odds of class 1 against class 0 suffice for the log-likelihood.
            odds_coef = coef[:, 1] - coef[:, 0]
            odds_intercept = intercept[:, 1] - intercept[:, 0]
            predictor._binary_predictor = (odds_intercept, odds_coef)
        return predictor

    # -- blocks ---------------------------------------------------------------
    def _row_blocks(self, n_rows: int) -> Iterator[slice]:
        per_row = self.n_draws * self.n_classes * self.numbers_per_logit
        step = max(1, BLOCK_ELEMENTS // max(1, per_row))
        for start in range(0, n_rows, step):
            yield slice(start, min(start + step, n_rows))

    def log_proba_blocks(self, X: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        """Per-draw class log-probabilities by blocks of rows: (rows, (S, block, K))."""
        for rows in self._row_blocks(X.shape[0]):
            yield rows, log_softmax(self.class_logits(X[rows]), axis=-1)

    # -- predictions ------------------------------------------------------------
    def mean_log_proba(self, X: np.ndarray) -> np.ndarray:
        r"""Log of the posterior predictive :math:`\log \sum_s w_s p(k \mid x_i, \theta^{(s)})`
        (:math:`w_s = 1/S` without weights), shape (n, K)."""
        out = np.empty((X.shape[0], self.n_classes))
        if self.log_weights is None:
            log_weights = np.full(self.n_draws, -np.log(self.n_draws))
        else:
            log_weights = self.log_weights
        for rows, log_proba in self.log_proba_blocks(X):
            out[rows] = special.logsumexp(log_proba + log_weights[:, None, None], axis=0)
        return out

    def interval(self, X: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed ``prob`` intervals of each class probability over the (weighted)
        draws, (n, K) each."""
        lower = np.empty((X.shape[0], self.n_classes))
        upper = np.empty_like(lower)
        tails = [(1 - prob) / 2, (1 + prob) / 2]
        for rows, log_proba in self.log_proba_blocks(X):
            lower[rows], upper[rows] = draw_quantiles(np.exp(log_proba), tails, self.log_weights)
        return lower, upper

    def sample_labels(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Class codes drawn from :math:`p(\\cdot \\mid x_i, \\theta^{(s)})`, shape (S, n)."""
        codes = np.empty((self.n_draws, X.shape[0]), dtype=np.intp)
        for rows, log_proba in self.log_proba_blocks(X):
            cumulative = np.cumsum(np.exp(log_proba), axis=-1)[..., :-1]
            uniform = rng.random(log_proba.shape[:-1])
            # Inverse CDF: the code is the number of cumulative probabilities below u.
            codes[:, rows] = np.sum(cumulative < uniform[..., None], axis=-1)
        return codes

    # -- log-likelihood -----------------------------------------------------------
    def _observed_blocks(self, X: np.ndarray, codes: np.ndarray):
        """:math:`\\log p(y_i \\mid x_i, \\theta^{(s)})` by blocks of rows: (rows, (S, block))."""
        if self._binary_predictor is not None:
            odds_intercept, odds_coef = self._binary_predictor
            for rows in self._row_blocks(X.shape[0]):
                # log sigma(+-eta) for y = 1 / y = 0, without an (S, rows, 2) array.
                signed = odds_coef @ X[rows].T
                signed += odds_intercept[:, None]
                signed *= 2.0 * codes[rows] - 1.0
                yield rows, log_sigmoid(signed, out=signed)
            return
        for rows, log_proba in self.log_proba_blocks(X):
            block = codes[rows]
            yield rows, log_proba[:, np.arange(len(block)), block]

    def pointwise_log_likelihood(self, X: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Unweighted :math:`\\log p(y_i \\mid x_i, \\theta^{(s)})`, shape (S, n)."""
        out = np.empty((self.n_draws, X.shape[0]))
        for rows, values in self._observed_blocks(X, codes):
            out[:, rows] = values
        return out

    def total_log_likelihood(
        self, X: np.ndarray, codes: np.ndarray, sample_weight: np.ndarray
    ) -> np.ndarray:
        """:math:`\\sum_i s_i \\log p(y_i \\mid x_i, \\theta^{(s)})` per draw, shape (S,),
        without an (S, n) array."""
        total = np.zeros(self.n_draws)
        for rows, values in self._observed_blocks(X, codes):
            total += values @ sample_weight[rows]
        return total


def gaussian_draws(posterior, layout, n_draws: int, rng: np.random.Generator):
    """Draws of a :class:`~problogreg.posterior.gaussian.GaussianPosterior` over the free
    parameters of ``layout``: free draws (S, p), their standard normals, and a
    :class:`DrawPredictor` over them."""
    noise = rng.standard_normal((n_draws, posterior.noise_dim))
    free = posterior.noise_to_draws(noise)
    predictor = DrawPredictor.linear(*layout.class_rows(layout.to_likelihood(free)))
    return free, noise, predictor
