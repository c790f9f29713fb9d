"""Input validation: user inputs -> clean arrays, label encoding, clear errors.

Every estimator goes through these two functions, so every estimator reports bad
input with the same words. The arrays returned are always fresh copies or
read-only views: user inputs are never modified in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data


@dataclass(frozen=True)
class FitData:
    """Validated training data.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int
        Class codes: ``classes[y[i]]`` is the label of sample ``i``.
    classes : ndarray of shape (n_classes,)
        Sorted unique labels.
    sample_weight : ndarray of shape (n_samples,), float64
    """

    X: np.ndarray
    y: np.ndarray
    classes: np.ndarray
    sample_weight: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def validate_fit_data(estimator, X, y, sample_weight=None) -> FitData:
    """Validate training inputs and encode the labels.

    Sets ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame) on the
    estimator, following scikit-learn's conventions.

    Raises
    ------
    ValueError
        For NaN or infinite values, mismatched lengths, empty data, fewer than two
        classes, and negative, non-finite or all-zero sample weights.
    """
    X, y = validate_data(estimator, X, y, dtype=np.float64, y_numeric=False)
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"y has only one class ({format_label(classes[0])}); a classifier needs samples "
            "from at least two classes. Check the target column or the train/test split."
        )
    weights = _validate_sample_weight(sample_weight, X.shape[0])
    present = np.bincount(codes, weights=weights, minlength=len(classes)) > 0
    if not present.all():
        missing = [format_label(c) for c in classes[~present]]
        raise ValueError(
            f"Every sample of class {', '.join(missing)} has zero sample_weight, so the "
            "class carries no information. Drop those samples or give them weight."
        )
    return FitData(X=X, y=codes.astype(np.intp), classes=classes, sample_weight=weights)


def format_label(value) -> str:
    """A class label as the user wrote it (numpy scalars unwrapped: 1, not np.int64(1))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def feature_names(estimator) -> list[str]:
    """The fitted estimator's feature names: its DataFrame columns, else x0, x1, ..."""
    if hasattr(estimator, "feature_names_in_"):
        return [str(name) for name in estimator.feature_names_in_]
    return [f"x{j}" for j in range(estimator.n_features_in_)]


def validate_predict_data(estimator, X) -> np.ndarray:
    """Check that the estimator is fitted and that X matches the training features."""
    check_is_fitted(estimator)
    return validate_data(estimator, X, dtype=np.float64, reset=False)


def _validate_sample_weight(sample_weight, n_samples: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n_samples)
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim == 0:
        # A scalar weighs every sample alike; it still has to pass the checks below.
        weights = np.full(n_samples, float(weights))
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {weights.shape}, but X has {n_samples} samples; "
            f"pass one weight per sample, shape ({n_samples},)."
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError("sample_weight contains NaN or infinite values.")
    if np.any(weights < 0):
        raise ValueError(
            f"sample_weight contains {np.count_nonzero(weights < 0)} negative values; "
            "weights must be >= 0."
        )
    if not np.any(weights > 0):
        raise ValueError("sample_weight is zero for every sample; nothing to fit.")
    return weights.copy()
