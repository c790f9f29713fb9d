"""Generative comparators: the same p(y | x) as logistic regression, fitted another way.

:class:`SharedCovarianceGaussian` (LDA, whose p(y | x) is exactly a softmax) and
:class:`NaiveBayes` (Gaussian or Bernoulli features), each with a maximum-
likelihood fit and a conjugate Bayesian posterior for model comparison.
"""

from .naive_bayes import NaiveBayes
from .shared_covariance import SharedCovarianceGaussian

__all__ = ["NaiveBayes", "SharedCovarianceGaussian"]
