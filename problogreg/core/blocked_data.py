r"""Training data in Dask collections: checked and summarised in one pass over the blocks.

A Dask array or DataFrame X, with labels y (a Dask array or Series, one block
per block of X) and optional weights, is read once, block by block, for
everything the fit needs before it starts: the rows of each block, the labels
present, the weight checks and per-class weights, NaN, infinite and
overflowing values per column, and each column's weighted mean and variance
(for ``autoscale``), combined across slabs of rows and blocks by Chan, Golub and
LeVeque's pairwise update

.. math::

    W = W_a + W_b,\quad \bar x = \bar x_a + \delta W_b / W,\quad
    M_2 = M_{2,a} + M_{2,b} + \delta^2 W_a W_b / W,\quad \delta = \bar x_b - \bar x_a,

which is as accurate as the two-pass in-memory formula. The same pass draws a
bounded random sample of rows from every block (:data:`SAMPLE_ROWS`), which the
fit uses for a warm start and the separation check. The data stay where they
are: the result holds lazy collections, these small summaries and the sample.

Dask is imported only inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

import numpy as np

from .block_summary import block_summary, merge_moments
from .blocked import BlockedLikelihood, RowSample, encode_labels
from .validation import (
    BLOCKED_DATA,
    MAX_ABS_FEATURE,
    DataFingerprint,
    feature_names,
    format_label,
)

#: Rows drawn at random in the validation pass: SAMPLE_FRACTION of every block
#: (:mod:`~problogreg.core.block_summary`), but at least SAMPLE_MIN_ROWS (all rows of
#: smaller data; the separation check of a flat-prior fit uses that many) and at most
#: SAMPLE_ROWS_PER_COLUMN per column of [1, X] (or SAMPLE_MIN_ROWS, if more),
#: SAMPLE_ROWS in all (both spread evenly over the blocks) and SAMPLE_BYTES of float64.
#: The fit starts from the mode of the sample and takes its first steps on the sample's
#: Hessian (:mod:`~problogreg.core.blocked`), whose relative error is about
#: 1 / sqrt(rows per column): 0.03 at 1000. Measured at n = 2e6, d = 50, 12 binary
#: problems from weak to strong signals: 51,000 rows (1000 per column) and 200,000 took
#: the same passes on every one, and the smaller sample cut the fit from 1.9-2.0 s to
#: 1.5 s on two workers (its transfer to the client, and its fit there). With three
#: classes (n = 1e6) two of the three strongest took one pass more than from 100,000 rows.
SAMPLE_MIN_ROWS = 20_000
SAMPLE_ROWS_PER_COLUMN = 1000
SAMPLE_ROWS = 200_000
SAMPLE_BYTES = 128 * 1024**2


def is_dask_collection(value) -> bool:
    """True for a Dask array, DataFrame or Series (without importing Dask otherwise)."""
    if "dask" not in sys.modules:
        return False
    import dask

    return dask.is_dask_collection(value)


@dataclass(frozen=True)
class BlockedFitData:
    """Validated training data in Dask row blocks.

    Attributes
    ----------
    X : dask array of shape (n_samples, n_features), one chunk of columns
    labels : dask array of shape (n_samples,)
        The raw labels; ``classes`` are the sorted distinct ones.
    classes : ndarray of shape (n_classes,)
    sample_weight : dask array of shape (n_samples,), or None for unit weights
    block_lengths : ndarray of int
    total_weight : float
    column_sd : ndarray of shape (n_features,)
        Weighted population sd of each column.
    fingerprint : DataFingerprint
        Hashes of rows sampled in each block (not equal to the fingerprint of the
        same data in memory).
    sample : RowSample
        Rows drawn at random from every block.
    """

    X: object
    labels: object
    classes: np.ndarray
    sample_weight: object
    block_lengths: np.ndarray
    total_weight: float
    column_sd: np.ndarray
    fingerprint: DataFingerprint
    sample: RowSample

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def likelihood(self, reference: bool) -> BlockedLikelihood:
        return BlockedLikelihood(
            self.X,
            self.labels,
            self.sample_weight,
            self.classes,
            self.block_lengths,
            self.total_weight,
            reference,
            self.sample,
        )


def as_feature_array(estimator, X, *, reset: bool):
    """A Dask DataFrame or array as a Dask array with one chunk of columns; with ``reset``
    sets ``n_features_in_`` (and ``feature_names_in_``), else checks them."""
    import dask.array as da
    import dask.dataframe as dd

    names = None
    if isinstance(X, dd.DataFrame):
        text = [str(c) for c, kind in X.dtypes.items() if kind.kind not in "biuf"]
        if text:
            raise ValueError(
                f"X has non-numeric columns {text}; encode them as numbers first (e.g. "
                "dd.get_dummies on categorical columns) or drop them."
            )
        names = list(X.columns)
        X = X.to_dask_array()
    elif not isinstance(X, da.Array):
        raise TypeError(
            f"X is a {type(X).__name__}; with Dask, pass a dask.array.Array or a "
            "dask.dataframe.DataFrame (y then a Dask array or Series blocked alike)."
        )
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (samples x features); got a {X.ndim}-D Dask array.")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X has dtype {X.dtype}; it must be numeric.")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    string_names = names is not None and all(isinstance(name, str) for name in names)
    if reset:
        estimator.n_features_in_ = X.shape[1]
        if string_names:
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return X
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} was fitted on "
            f"{estimator.n_features_in_}."
        )
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and string_names and list(fitted) != names:
        raise ValueError(
            f"X has columns {names}, but the model was fitted on columns {list(fitted)} "
            "(same names in the same order are needed)."
        )
    return X


def _as_row_vector(value, name: str, X):
    """A Dask Series/array (n,) or (n, 1), blocked as the rows of X."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(value, dd.Series):
        # Text labels (pandas' string dtype) become numpy object arrays.
        value = (value if value.dtype.kind in "biuf" else value.astype(object)).to_dask_array()
    elif isinstance(value, dd.DataFrame):
        if len(value.columns) != 1:
            raise ValueError(f"{name} must be one column; got {len(value.columns)} columns.")
        value = value.to_dask_array()[:, 0]
    elif not isinstance(value, da.Array):
        if np.all(~np.isnan(X.chunks[0])):
            return da.from_array(np.asarray(value), chunks=(X.chunks[0],))
        raise TypeError(
            f"{name} is a {type(value).__name__} but X is a Dask collection whose block "
            "sizes are unknown; pass it as a Dask array or Series from the same data frame."
        )
    if value.ndim == 2 and value.shape[1] == 1:
        value = value[:, 0]
    if value.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got a {value.ndim}-D Dask array.")
    if value.numblocks[0] != X.numblocks[0]:
        known = not np.any(np.isnan(X.chunks[0])) and not np.any(np.isnan(value.chunks[0]))
        if not known or value.shape[0] != X.shape[0]:
            raise ValueError(
                f"{name} has {value.numblocks[0]} blocks of rows but X has "
                f"{X.numblocks[0]}: take both from one Dask DataFrame, or chunk them alike."
            )
        value = value.rechunk((X.chunks[0],))
    return value


def validate_blocked_fit_data(estimator, X, y, sample_weight=None) -> BlockedFitData:
    """Validate Dask training data in one pass, and draw a random sample of its rows.

    Sets ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame with
    string column names) on the estimator.

    Raises
    ------
    ValueError
        As :func:`~problogreg.core.validation.validate_fit_data` does, for the same
        problems; rows are counted within blocks only where the message says so.
    """
    import dask

    # Dask fuses the partitions of a Parquet read when a column projection leaves them
    # small, differently for the one-column y than for the many-column X of one frame
    # (dask/dask#12193): without this, frame.drop(columns="y") and frame["y"] of a
    # directory of files would no longer pair up block by block.
    with dask.config.set({"optimization.tune.active": False}):
        X = as_feature_array(estimator, X, reset=True)
        labels = _as_row_vector(y, "y", X)
        weights = (
            None if sample_weight is None else _as_row_vector(sample_weight, "sample_weight", X)
        )
    summarise = dask.delayed(block_summary, pure=True)
    weight_blocks = [None] * X.numblocks[0] if weights is None else weights.to_delayed().ravel()
    d = max(X.shape[1], 1)
    per_column = max(SAMPLE_MIN_ROWS, SAMPLE_ROWS_PER_COLUMN * (d + 1))
    most = min(SAMPLE_ROWS, per_column, SAMPLE_BYTES // (8 * d))
    per_block = tuple(-(-rows // X.numblocks[0]) for rows in (min(SAMPLE_MIN_ROWS, most), most))
    summaries = dask.compute(
        *[
            summarise(x, label, weight, per_block, block_id)
            for block_id, (x, label, weight) in enumerate(
                zip(
                    X.to_delayed().ravel(),
                    labels.to_delayed().ravel(),
                    weight_blocks,
                    strict=True,
                )
            )
        ]
    )
    summaries = list(summaries)
    _raise_for_bad_blocks(estimator, summaries)
    block_lengths = np.array([part["rows"][0] for part in summaries], dtype=np.int64)
    try:
        classes = np.unique(np.concatenate([part["classes"] for part in summaries]))
    except TypeError:
        raise ValueError(
            "y mixes types (e.g. strings and numbers); labels must all be of one type."
        ) from None
    if len(classes) < 2:
        raise ValueError(
            f"y has only one class ({format_label(classes[0])}); a classifier needs samples "
            "from at least two classes. Check the target column."
        )
    class_weight = np.zeros(len(classes))
    for part in summaries:
        class_weight[np.searchsorted(classes, part["classes"])] += part["class_weight"]
    if not np.any(class_weight > 0):
        raise ValueError("sample_weight is zero for every sample; nothing to fit.")
    if not np.all(class_weight > 0):
        missing = [format_label(c) for c in classes[class_weight <= 0]]
        raise ValueError(
            f"Every sample of class {', '.join(missing)} has zero sample_weight, so the "
            "class carries no information. Drop those samples or give them weight."
        )
    moments = (0.0, 0.0, 0.0)
    for part in summaries:
        moments = merge_moments(moments, part["moments"])
    total_weight, _, m2 = moments
    digest = hashlib.blake2b(b"".join(part["digest"] for part in summaries), digest_size=12)
    n_samples = int(block_lengths.sum())
    return BlockedFitData(
        X=X,
        labels=labels,
        classes=classes,
        sample_weight=weights,
        block_lengths=block_lengths,
        total_weight=total_weight,
        column_sd=np.sqrt(m2 / total_weight),
        fingerprint=DataFingerprint(n_samples, X.shape[1], digest.hexdigest(), BLOCKED_DATA),
        sample=_row_sample(summaries, classes),
    )


def _row_sample(summaries: list[dict], classes: np.ndarray) -> RowSample:
    """The rows drawn from every block, their codes, and their stratum factors."""
    X, labels, weights = (
        np.concatenate([part["sample"][k] for part in summaries]) for k in range(3)
    )
    factor = np.concatenate(
        [
            np.full(len(part["sample"][1]), part["rows"][0] / max(len(part["sample"][1]), 1))
            for part in summaries
        ]
    )
    return RowSample(X, encode_labels(labels, classes), weights, factor)


def _raise_for_bad_blocks(estimator, summaries: list[dict]) -> None:
    mismatched = [b for b, part in enumerate(summaries) if len(set(part["rows"])) > 1]
    if mismatched:
        rows = summaries[mismatched[0]]["rows"]
        raise ValueError(
            f"Blocks {mismatched[:10]} of X, y and sample_weight differ in length (block "
            f"{mismatched[0]}: {rows[0]}, {rows[1]} and {rows[2]} rows): take them from one "
            "Dask DataFrame, or chunk them alike."
        )
    if sum(part["rows"][0] for part in summaries) == 0:
        raise ValueError("X has no rows; nothing to fit.")
    missing = sum(part["missing_labels"] for part in summaries)
    if missing:
        raise ValueError(
            f"y contains NaN or None (missing labels) in {missing} rows. Drop those rows "
            "(e.g. ddf.dropna(subset=[target])) or fill in their labels."
        )
    bad_weights = sum(part["bad_weights"] for part in summaries)
    if bad_weights:
        raise ValueError(
            f"sample_weight has {bad_weights} negative, NaN or infinite values; weights "
            "must be finite and >= 0."
        )
    for key, problem, fix in (
        (
            "non_finite",
            "NaN or infinite values",
            "Fix or drop these rows (e.g. ddf.dropna()), or impute the missing values.",
        ),
        (
            "too_large",
            f"values larger than {MAX_ABS_FEATURE:g} in magnitude (their squares overflow)",
            "Rescale these columns (change their units) before fitting.",
        ),
    ):
        bad = np.any([part[key] for part in summaries], axis=0)
        if bad.any():
            names = feature_names(estimator)
            columns = [names[j] for j in np.flatnonzero(bad)]
            raise ValueError(f"X has {problem} in columns {columns}. {fix}")
