"""Predictions of any fitted model whose class logits are linear in x."""

from __future__ import annotations

import numpy as np

from ..core.numerics import log_softmax
from ..core.validation import validate_predict_data
from ._blocked_predictions import lazy_on_dask


class LinearLogitClassifierMixin:
    """Predictions of a model whose class logits are ``X @ coef_.T + intercept_``.

    For two classes ``coef_`` has one row (the logit of ``classes_[1]``
    against ``classes_[0]``); otherwise one row per class.
    """

    def _class_logits(self, X: np.ndarray) -> np.ndarray:
        eta = X @ self.coef_.T + self.intercept_
        if len(self.classes_) == 2:
            return np.column_stack([np.zeros(len(eta)), eta[:, 0]])
        return eta

    @lazy_on_dask
    def decision_function(self, X):
        """Log-odds of ``classes_[1]`` (binary, shape (n,)) or class logits (n, K)."""
        logits = self._class_logits(validate_predict_data(self, X))
        return logits[:, 1] if len(self.classes_) == 2 else logits

    @lazy_on_dask
    def predict_log_proba(self, X):
        """Log class probabilities, shape (n_samples, n_classes), by log-sum-exp."""
        return log_softmax(self._class_logits(validate_predict_data(self, X)))

    @lazy_on_dask
    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        return np.exp(self.predict_log_proba(X))

    @lazy_on_dask
    def predict(self, X):
        """Most probable class label for each sample."""
        # Predict first: it checks that the model is fitted before classes_ is read.
        log_proba = self.predict_log_proba(X)
        return self.classes_[np.argmax(log_proba, axis=1)]
