r"""Weighted sufficient statistics of the class-conditional models.

With sample weights :math:`s_i` (an integer weight is the same as repeating the
row), class :math:`k` has weight :math:`N_k = \sum_{i: y_i = k} s_i`, mean
:math:`\bar x_k = \sum_{i: y_i = k} s_i x_i / N_k` and residuals
:math:`r_i = x_i - \bar x_{y_i}`. Everything the generative models need is a
function of these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.numerics import weighted_gram
from ...core.validation import FitData


@dataclass(frozen=True)
class ClassMoments:
    """Class weights, class means and within-class residuals of the training data.

    Attributes
    ----------
    counts : ndarray of shape (n_classes,)
        :math:`N_k`, the total sample weight of each class.
    means : ndarray of shape (n_classes, n_features)
        :math:`\\bar x_k`.
    residuals : ndarray of shape (n_samples, n_features)
        :math:`r_i = x_i - \\bar x_{y_i}`.
    sample_weight : ndarray of shape (n_samples,)
    """

    counts: np.ndarray
    means: np.ndarray
    residuals: np.ndarray
    sample_weight: np.ndarray

    @classmethod
    def from_data(cls, data: FitData) -> ClassMoments:
        weight = data.sample_weight
        one_hot = np.eye(data.n_classes)[data.y] * weight[:, None]
        counts = one_hot.sum(axis=0)
        means = (one_hot.T @ data.X) / counts[:, None]
        return cls(counts, means, data.X - means[data.y], weight)

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    def pooled_scatter(self) -> np.ndarray:
        """:math:`\\sum_i s_i r_i r_i^\\top`, shape (n_features, n_features)."""
        return weighted_gram(self.residuals, self.sample_weight)

    def class_sum_squares(self, y: np.ndarray) -> np.ndarray:
        """:math:`\\sum_{i: y_i = k} s_i r_{ij}^2`, shape (n_classes, n_features)."""
        sums = np.zeros_like(self.means)
        np.add.at(sums, y, self.sample_weight[:, None] * self.residuals**2)
        return sums


def ledoit_wolf_shrinkage(residuals: np.ndarray, sample_weight: np.ndarray) -> float:
    r"""Ledoit-Wolf (2004) shrinkage intensity towards :math:`\mu I` for centred data.

    With :math:`W = \sum_i s_i`, :math:`S = \sum_i s_i r_i r_i^\top / W` and
    :math:`\mu = \operatorname{tr} S / d`,

    .. math::

        \delta^2 = \lVert S - \mu I \rVert_F^2, \qquad
        \beta^2 = \frac{1}{W^2} \sum_i s_i \lVert r_i r_i^\top - S \rVert_F^2
                = \frac{1}{W^2}\Big(\sum_i s_i \lVert r_i \rVert^4 - W \lVert S \rVert_F^2\Big),

    and the intensity is :math:`\min(\beta^2, \delta^2) / \delta^2` (0 when
    :math:`S` is already a multiple of the identity). Unit weights give
    scikit-learn's ``ledoit_wolf(r, assume_centered=True)``.
    """
    total = sample_weight.sum()
    covariance = weighted_gram(residuals, sample_weight) / total
    target = np.trace(covariance) / covariance.shape[0]
    delta = np.sum(covariance**2) - 2 * target * np.trace(covariance) + target**2 * len(covariance)
    if delta <= 0:
        return 0.0
    fourth = sample_weight @ np.sum(residuals**2, axis=1) ** 2
    beta = (fourth - total * np.sum(covariance**2)) / total**2
    return float(min(beta, delta) / delta)
