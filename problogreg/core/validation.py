"""Input validation: user inputs -> clean arrays, label encoding, clear errors.

Every estimator goes through these two functions, so every estimator reports bad
input with the same words. The arrays returned are always fresh copies or
read-only views: user inputs are never modified in place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

#: Largest magnitude of a feature value accepted: beyond it the squares of the values
#: (Gram matrices, variances, Gaussian densities) overflow float64.
MAX_ABS_FEATURE = 1e150

#: Rows of X sampled into a data fingerprint: enough to tell data sets apart, cheap at any n.
FINGERPRINT_ROWS = 1024
#: Entries of the sampled rows hashed at most (about): columns are sampled too beyond it.
#: Kept small because the copy of a strided sample costs page faults at every fit (~1 ms
#: per MiB on some machines), which a wide fit of milliseconds notices.
FINGERPRINT_ENTRIES = 2**14


#: The ``weight_hash`` of the fingerprint of data in Dask blocks (their own kind of hash).
BLOCKED_DATA = "blocked"


@dataclass(frozen=True)
class DataFingerprint:
    """A cheap identity of a training set: its shape and hashes of sampled rows and weights.

    Stored by every estimator as ``data_fingerprint_`` so that model comparison
    can refuse data a model was not fitted on.
    """

    n_samples: int
    n_features: int
    data_hash: str
    weight_hash: str

    @classmethod
    def of(cls, X, labels: np.ndarray, sample_weight: np.ndarray):
        step = max(1, X.shape[0] // FINGERPRINT_ROWS)
        sampled = X[::step]
        # Wide data: evenly spaced columns too, about FINGERPRINT_ENTRIES entries in all.
        sampled = sampled[:, :: max(1, sampled.shape[0] * sampled.shape[1] // FINGERPRINT_ENTRIES)]
        if sparse.issparse(sampled):
            sampled = sampled.tocsr()
            sampled.sort_indices()
            parts = (sampled.data, sampled.indices, sampled.indptr)
        else:
            parts = (sampled,)
        data = hashlib.blake2b(digest_size=12)
        for part in parts:
            # A contiguous array is hashed through its buffer, without a bytes copy.
            data.update(np.ascontiguousarray(part))
        data.update(np.asarray([str(label) for label in labels[::step]]).astype("U").tobytes())
        weights = hashlib.blake2b(np.ascontiguousarray(sample_weight), digest_size=12)
        return cls(X.shape[0], X.shape[1], data.hexdigest(), weights.hexdigest())

    def mismatch(self, other: DataFingerprint) -> str | None:
        """Why ``other`` is not the data behind this fingerprint, or None when it is."""
        if (self.n_samples, self.n_features) != (other.n_samples, other.n_features):
            return (
                f"it was fitted on {self.n_samples} x {self.n_features} data, not "
                f"{other.n_samples} x {other.n_features}"
            )
        if self.data_hash != other.data_hash:
            return "it was fitted on other values of X or y (same shape)"
        if self.weight_hash != other.weight_hash:
            return "it was fitted with other sample weights (pass the same sample_weight)"
        return None


@dataclass(frozen=True)
class FitData:
    """Validated training data.

    Attributes
    ----------
    X : ndarray or scipy.sparse CSR matrix of shape (n_samples, n_features), float64
        Sparse only for estimators that accept it (their ``input_tags.sparse``).
    y : ndarray of shape (n_samples,), int
        Class codes: ``classes[y[i]]`` is the label of sample ``i``.
    classes : ndarray of shape (n_classes,)
        Sorted unique labels.
    sample_weight : ndarray of shape (n_samples,), float64
    fingerprint : DataFingerprint
    """

    X: np.ndarray
    y: np.ndarray
    classes: np.ndarray
    sample_weight: np.ndarray
    fingerprint: DataFingerprint

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
        For NaN, infinite or overflowing values (:func:`check_feature_magnitude`),
        mismatched lengths, empty data, missing (None)
        or mixed-type labels (see :func:`check_label_values`), fewer than two
        classes, and negative, non-finite or all-zero sample weights.
    """
    y = check_label_values(y)
    X, y = validate_data(
        estimator, X, y, dtype=np.float64, y_numeric=False, accept_sparse=accepted_sparse(estimator)
    )
    X = aligned(X)
    check_feature_magnitude(estimator, X)
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"y has only one class ({format_label(classes[0])}); a classifier needs samples "
            "from at least two classes. Check the target column or the train/test split."
        )
    weights = validate_sample_weight(sample_weight, X.shape[0])
    present = np.bincount(codes, weights=weights, minlength=len(classes)) > 0
    if not present.all():
        missing = [format_label(c) for c in classes[~present]]
        raise ValueError(
            f"Every sample of class {', '.join(missing)} has zero sample_weight, so the "
            "class carries no information. Drop those samples or give them weight."
        )
    return FitData(
        X=X,
        y=codes.astype(np.intp),
        classes=classes,
        sample_weight=weights,
        fingerprint=DataFingerprint.of(X, classes[codes], weights),
    )


def _label_kind(value) -> str:
    """``"missing"``, ``"number"`` or the type name of one label."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return "missing"
    if isinstance(value, float | np.floating) and value != value:
        return "missing"
    if isinstance(value, bool | np.bool_ | Integral | float | np.floating):
        return "number"
    return "str" if isinstance(value, str | np.str_) else type(value).__name__


def check_label_values(y):
    """Refuse labels that are missing (None, NaN) or that mix types (str and int).

    Returns ``y`` unchanged, except that a 1-D object array holding only numbers
    becomes a numeric array (scikit-learn cannot tell such labels' type). Numbers
    of any type (int, float, bool) count as one kind: they sort with each other.
    Anything that is not a 1-D array of labels is returned as is, for
    scikit-learn's own shape checks.

    Raises
    ------
    ValueError
        Naming the rows with missing labels, or the types found and a row of each.
    """
    try:
        labels = np.asarray(y)
    except (TypeError, ValueError):
        return y
    if labels.ndim != 1 or labels.dtype.kind not in "Of":
        return y
    if labels.dtype.kind == "f":
        kinds = np.where(np.isnan(labels), "missing", "number").astype(object)
    else:
        kinds = np.array([_label_kind(value) for value in labels], dtype=object)
    missing = np.flatnonzero(kinds == "missing")
    if len(missing):
        raise ValueError(
            f"y contains NaN or None (missing labels) at {len(missing)} of {len(labels)} "
            f"rows ({rows_text(missing)}; counting from 0). Drop those rows or fill in "
            "their labels."
        )
    found = sorted(set(kinds.tolist()))
    if len(found) > 1:
        firsts = sorted(int(np.flatnonzero(kinds == kind)[0]) for kind in found)
        examples = "; ".join(f"row {row} is {labels[row]!r}" for row in firsts)
        names = " and ".join("numbers" if kind == "number" else kind for kind in found)
        raise ValueError(
            f"y mixes types: {names} ({examples}). Labels must all be of one type; "
            "convert them first, e.g. all to strings with y.astype(str)."
        )
    if labels.dtype == object and found == ["number"]:
        return np.array(labels.tolist())
    return y


def rows_text(rows) -> str:
    """The first ten row numbers of a problem, for a message ("0, 3, 7 ...")."""
    rows = np.asarray(rows)
    return ", ".join(map(str, rows[:10].tolist())) + (" ..." if len(rows) > 10 else "")


def one_line(err: Exception) -> str:
    """An error's message on one line (for command-line output)."""
    return " ".join(str(err).split())


def format_label(value) -> str:
    """A class label as the user wrote it (numpy scalars unwrapped: 1, not np.int64(1))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def feature_names(estimator) -> list[str]:
    """The fitted estimator's feature names: its DataFrame columns, else x0, x1, ..."""
    columns = getattr(estimator, "feature_names_in_", None)
    return names_of_features(columns, estimator.n_features_in_)


def names_of_features(columns, n_features: int) -> list[str]:
    """Feature names from DataFrame ``columns`` (None for an array): x0, x1, ... then."""
    if columns is not None:
        return [str(name) for name in columns]
    return [f"x{j}" for j in range(n_features)]


def validate_predict_data(estimator, X) -> np.ndarray:
    """Check that the estimator is fitted and that X matches the training features,
    with NaN, infinite and overflowing values refused by column and row."""
    check_is_fitted(estimator)
    X = validate_data(
        estimator,
        X,
        dtype=np.float64,
        reset=False,
        ensure_all_finite=False,
        accept_sparse=accepted_sparse(estimator),
    )
    X = aligned(X)
    rows, columns = flagged_entries(X, lambda values: ~np.isfinite(values))
    if len(rows):
        names = feature_names(estimator)
        columns = [names[j] for j in np.unique(columns)]
        found = [
            name
            for name, bad in (("NaN", np.isnan), ("infinite", np.isinf))
            if len(flagged_entries(X, bad)[0])
        ]
        raise ValueError(
            f"X has values that are {' or '.join(found)} in columns {columns} (rows "
            f"{rows_text(np.unique(rows))}; counting from 0). "
            f"{type(estimator).__name__} cannot compute class probabilities for them. Fix "
            "or drop these rows, or impute the missing values."
        )
    check_feature_magnitude(estimator, X)
    return X


def aligned(array):
    """``array``, or an aligned copy of it if it is a dense array whose items are not
    aligned in memory.

    An array unpickled from received bytes can sit at any offset in them: a Dask array
    computed on a ``dask.distributed`` cluster arrives so. Numpy and BLAS read
    unaligned float64 many times slower than a copy costs (an in-memory fit of 2e6 x 50
    rows took 19-24 s instead of 2.2-2.9 s).
    """
    if sparse.issparse(array) or array.flags.aligned:
        return array
    return np.array(array, order="K")


def flagged_entries(X, flag) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the entries of X (the stored ones if X is sparse) for which
    ``flag(values)`` is True."""
    if sparse.issparse(X):
        X = X.tocsr()
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        hit = flag(X.data)
        return rows[hit], X.indices[hit]
    return np.nonzero(flag(X))


def accepted_sparse(estimator) -> str | bool:
    """ "csr" (every sparse format is converted to CSR) for estimators whose scikit-learn
    tags say they take sparse input, else False (sparse input is refused)."""
    return "csr" if get_tags(estimator).input_tags.sparse else False


def check_feature_magnitude(estimator, X) -> None:
    """Refuse finite values beyond :data:`MAX_ABS_FEATURE`, naming their columns and rows.

    Their squares overflow, so every model would return NaN, zeros or a failed
    factorisation instead of an answer; rescaling the column (a change of units) is
    the fix, and no model's answer depends on the units of its features.
    """
    values = X.data if sparse.issparse(X) else X
    # Two reductions without temporaries; entries are located only when one is too large.
    if values.size == 0 or max(values.max(), -values.min()) <= MAX_ABS_FEATURE:
        return
    rows, columns = flagged_entries(X, lambda values: np.abs(values) > MAX_ABS_FEATURE)
    names = feature_names(estimator)
    columns = [names[j] for j in np.unique(columns)]
    raise ValueError(
        f"X has values larger than {MAX_ABS_FEATURE:g} in magnitude in columns {columns} "
        f"(rows {rows_text(np.unique(rows))}; counting from 0): their "
        "squares overflow double precision. "
        "Rescale these columns (change their units, e.g. divide by a power of ten, or "
        "take logarithms) before fitting or predicting."
    )


def encode_labels(classes: np.ndarray, y) -> np.ndarray:
    """Codes of the labels ``y`` in the fitted ``classes`` (``classes[codes] == y``).

    Raises
    ------
    ValueError
        Naming the labels the model was not fitted on.
    """
    y = np.asarray(y)
    codes = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    unknown = classes[codes] != y
    if np.any(unknown):
        labels = ", ".join(sorted({format_label(label) for label in y[unknown]}))
        fitted = ", ".join(format_label(label) for label in classes)
        raise ValueError(
            f"y contains labels the model was not fitted on: {labels}; the fitted classes "
            f"are {fitted}."
        )
    return codes


def validate_scoring_data(estimator, X, y, sample_weight=None):
    """Check (X, y[, sample_weight]) against a fitted estimator for scoring or LOO.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    codes : ndarray of shape (n_samples,)
        Class codes of y in ``estimator.classes_``.
    sample_weight : ndarray of shape (n_samples,)
    """
    if X is None or y is None:
        raise ValueError("Pass both X and y (the data to score).")
    X = validate_predict_data(estimator, X)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != X.shape[0]:
        raise ValueError(
            f"y must be a 1-D array with one label per row of X ({X.shape[0]}); "
            f"got shape {y.shape}."
        )
    codes = encode_labels(estimator.classes_, y)
    return X, codes, validate_sample_weight(sample_weight, X.shape[0])


def validate_training_data(estimator, X, y, sample_weight=None, name: str | None = None):
    """:func:`validate_scoring_data` for methods defined on the training data only (LOO,
    the approximation check, the loss surface): (X, y, sample_weight) must be the data
    the estimator was fitted on, by its ``data_fingerprint_``.

    Raises
    ------
    ValueError
        Saying what differs (shape, values, or weights) and how to fix it.
    """
    who = name or f"This {type(estimator).__name__}"
    if estimator.data_fingerprint_.weight_hash == BLOCKED_DATA:
        raise ValueError(
            f"{who} was fitted on Dask data: leave-one-out, the approximation check and the "
            "other training-data diagnostics need every row in memory at once, so they are "
            "not available for it. Fit in memory (e.g. on a random sample of the rows) to "
            "use them."
        )
    X, codes, weights = validate_scoring_data(estimator, X, y, sample_weight)
    reason = estimator.data_fingerprint_.mismatch(
        DataFingerprint.of(X, estimator.classes_[codes], weights)
    )
    if reason is not None:
        raise ValueError(
            f"{who} was not fitted on the data given: {reason}. Leave-one-out and the other "
            "training-data diagnostics need the data (and sample_weight) the model was "
            "fitted on; refit it on these data, or pass its own."
        )
    return X, codes, weights


def validate_sample_weight(sample_weight, n_samples: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n_samples)
    weights = aligned(np.asarray(sample_weight, dtype=np.float64))
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


def check_random_state(random_state) -> np.random.Generator:
    """The package's one random-state policy: a numpy Generator from None, an int,
    a SeedSequence, a Generator (used as is) or a legacy RandomState."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise ValueError(
            f"random_state must be None, a non-negative int or a numpy Generator; got "
            f"{random_state!r}."
        ) from None


def check_probability(value, name: str) -> float:
    """A probability argument (``ci_prob``, ``prob``) strictly between 0 and 1, or a
    ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {value!r}.")
    return float(value)


def check_count(value, name: str, minimum: int = 1) -> int:
    """A positive integer argument (draws, chains, ...), or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)
