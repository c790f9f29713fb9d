"""One block's share of the validation pass of data in Dask blocks (run on the worker
that holds the block): the checks, the weighted moments of the columns, the class
weights, a fingerprint and a random sample of rows, read once in slabs of rows;
:func:`merge_moments` adds two blocks' moments up on the client."""

from __future__ import annotations

import hashlib

import numpy as np

from .blocked import float64_slabs, slab_rows
from .validation import MAX_ABS_FEATURE

#: Rows of each block hashed into the data fingerprint.
FINGERPRINT_ROWS_PER_BLOCK = 64
#: Share of each block's rows drawn for the warm start and the separation check (the
#: bounds in :mod:`~problogreg.core.blocked_data`).
SAMPLE_FRACTION = 0.1


def missing_labels(labels: np.ndarray) -> int:
    if labels.dtype.kind == "f":
        return int(np.count_nonzero(np.isnan(labels)))
    if labels.dtype.kind == "O":
        return sum(
            value is None or (isinstance(value, float) and value != value) for value in labels
        )
    return 0


def block_summary(X, labels, weights, sample_rows: tuple[int, int], block_id: int) -> dict:
    """Everything the fit checks or needs of one block, in O(features + classes) numbers,
    and :data:`SAMPLE_FRACTION` of its rows, clipped to ``sample_rows`` (fewest, most),
    drawn at random. X is read once, in slabs of rows (:func:`column_summary`)."""
    labels = np.asarray(labels)
    n = len(X)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    summary = {
        "rows": (n, len(labels), len(weights)),
        "missing_labels": missing_labels(labels),
        "bad_weights": int(np.count_nonzero(~np.isfinite(weights) | (weights < 0))),
    }
    if len(set(summary["rows"])) > 1:
        return summary
    non_finite, too_large, moments = column_summary(X, weights)
    summary.update(non_finite=non_finite, too_large=too_large)
    if summary["missing_labels"] or summary["bad_weights"] or non_finite.any():
        return summary
    classes, class_weight = class_weights(labels, weights)
    step = max(1, n // FINGERPRINT_ROWS_PER_BLOCK)
    digest = hashlib.blake2b(
        np.ascontiguousarray(X[::step], dtype=np.float64).tobytes(), digest_size=12
    )
    digest.update(np.asarray([str(label) for label in labels[::step]]).astype("U").tobytes())
    # Hashed through its buffer: a bytes copy of the weights page-faults in Dask workers.
    digest.update(np.ascontiguousarray(weights))
    drawn = np.sort(
        np.random.default_rng([SAMPLE_SEED, block_id]).choice(
            n, min(n, int(np.clip(np.ceil(SAMPLE_FRACTION * n), *sample_rows))), replace=False
        )
    )
    summary.update(
        classes=classes,
        class_weight=class_weight,
        moments=moments,
        digest=digest.digest(),
        sample=(
            np.asarray(np.take(X, drawn, axis=0), dtype=np.float64),
            labels[drawn],
            weights[drawn],
        ),
    )
    return summary


#: Seed of the rows drawn in each block (with the block's number): the same data always
#: give the same sample, and so the same fit.
SAMPLE_SEED = 14
#: Float64 bytes of the rows checked and summarised together in the validation pass: few
#: enough to stay in a core's cache from the first reduction over them to the last.
CHECK_SLAB_BYTES = 1024**2
#: Relative margin below :data:`MAX_ABS_FEATURE` within which :func:`column_summary`
#: looks at a slab column by column: far more than the rounding of its bound.
BOUND_MARGIN = 1e-9


def column_summary(X, weights) -> tuple[np.ndarray, np.ndarray, tuple]:
    r"""Which columns of X hold NaN or infinite values, which hold finite values beyond
    :data:`MAX_ABS_FEATURE` in magnitude, and every column's weighted moments
    (:func:`_slab_moments` of each slab of rows, merged by :func:`merge_moments`).

    X is read once, in slabs of :data:`CHECK_SLAB_BYTES`. A slab passes when the
    bound on its largest magnitude that :func:`_slab_moments` returns is at most
    :math:`(1 - \epsilon)` :data:`MAX_ABS_FEATURE`, :math:`\epsilon` =
    :data:`BOUND_MARGIN` (so it is finite); only a slab that fails is looked at column
    by column, for the largest :math:`|x|` of each.
    """
    # The largest |x| of each column over the slabs that failed: NaN if the column has
    # a NaN there, inf if an inf.
    magnitude = np.zeros(X.shape[1])
    moments = (0.0, 0.0, 0.0)
    rows = slab_rows(X.shape[1], CHECK_SLAB_BYTES)
    scratch = np.empty((min(len(X), rows), X.shape[1]))
    # Moments with non-finite values or overflow are not used (the fit stops with the
    # error these flags raise), so their arithmetic is not warned about.
    with np.errstate(invalid="ignore", over="ignore"):
        for part, slab in float64_slabs(X, rows):
            slab_moments, bound = _slab_moments(slab, weights[part], scratch[: len(slab)])
            if not bound <= MAX_ABS_FEATURE * (1 - BOUND_MARGIN):
                largest = np.maximum(slab.max(axis=0), -slab.min(axis=0))
                np.maximum(magnitude, largest, out=magnitude)
            moments = merge_moments(moments, slab_moments)
    finite = np.isfinite(magnitude)
    return ~finite, finite & (magnitude > MAX_ABS_FEATURE), moments


def _slab_moments(X: np.ndarray, weights: np.ndarray, scratch: np.ndarray):
    r"""Total weight, weighted mean and weighted sum of squared deviations of each column,

    .. math::

        W = \sum_i s_i, \qquad \bar x = \sum_i s_i x_i / W, \qquad
        M_2 = \sum_i s_i (x_i - \bar x)^2

    (zeros if :math:`W = 0`), and an upper bound on the largest magnitude in X,

    .. math::

        \max_j |\bar x_j| + \max_{ij} |x_{ij} - \bar x_j|

    (with :math:`\bar x = 0` if :math:`W = 0`), from the squared deviations, so not
    finite if X has a NaN or an infinite value, or a deviation whose square overflows.
    One read of X for the mean and one, in cache, for the deviations; ``scratch``, of
    X's shape, is overwritten, X is not.
    """
    total = float(weights.sum())
    mean = weights @ X / total if total > 0 else np.zeros(X.shape[1])
    squares = np.square(np.subtract(X, mean, out=scratch), out=scratch)
    # A NaN in X is in the deviations whatever the weights, and propagates through both
    # reductions (over contiguous memory, so fast).
    bound = np.max(np.abs(mean), initial=0.0) + np.sqrt(np.max(squares, initial=0.0))
    if not total > 0:
        return (0.0, 0.0, 0.0), bound
    return (total, mean, weights @ squares), bound


def class_weights(labels: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct labels of a block, sorted, and the total weight of each (zero for a
    label whose rows all have zero weight).

    Integer labels spanning no more values than the block has rows are counted by
    their offsets from the smallest (no sort); others are sorted by ``np.unique``.
    """
    if labels.dtype.kind in "biu" and len(labels):
        low = int(labels.min())
        span = int(labels.max()) - low + 1
        if span <= len(labels):
            codes = np.subtract(labels, low, dtype=np.intp)
            present = np.flatnonzero(np.bincount(codes, minlength=span))
            class_weight = np.bincount(codes, weights=weights, minlength=span)[present]
            return (present + low).astype(labels.dtype), class_weight
    classes, codes = np.unique(labels, return_inverse=True)
    return classes, np.bincount(codes.ravel(), weights=weights, minlength=len(classes))


def merge_moments(a, b):
    """Chan, Golub and LeVeque's update of (weight, mean, m2) for the union of two sets."""
    if a[0] == 0:
        return b
    if b[0] == 0:
        return a
    weight = a[0] + b[0]
    delta = b[1] - a[1]
    return weight, a[1] + delta * b[0] / weight, a[2] + b[2] + delta**2 * a[0] * b[0] / weight
