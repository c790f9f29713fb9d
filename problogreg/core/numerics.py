r"""Numerical kernels shared by every layer: stable log-probabilities and weighted moments.

Each function is a pure array function; the models and the posterior layer
call these rather than writing their own log-softmax or weighted variance.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
from scipy import sparse
from scipy.linalg.blas import dsyrk

#: Memory for the scaled copy of X in :func:`weighted_gram`: it is built and
#: multiplied block by block, so a Gram matrix never copies all of X, and a
#: block this size stays in cache between the scaling and the BLAS call.
#: (Larger blocks mean fewer BLAS calls, which matters only when other
#: processes compete for the cores: each call synchronises its threads.)
GRAM_BLOCK_BYTES = 4 * 1024**2
#: Fewest rows per block: a rank-k update with small k runs far below BLAS speed.
GRAM_BLOCK_MIN_ROWS = 256
#: Largest scratch array kept between calls (per thread and name); larger ones are fresh.
SCRATCH_LIMIT_BYTES = 16 * 1024**2
_SCRATCH = threading.local()


def thread_scratch(name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """A scratch array of ``shape``, kept per thread under ``name`` between calls (up to
    :data:`SCRATCH_LIMIT_BYTES`; larger ones are allocated afresh). Its contents are
    undefined, and it is valid only until the next call with the same name in the same
    thread.

    Where freed memory goes back to the operating system at once (Dask's workers set
    ``MALLOC_TRIM_THRESHOLD_``), a fresh array per call page-faults at a cost comparable
    to the arithmetic on it: a Newton pass over Dask blocks in slabs of rows took twice
    as long.
    """
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    if size * dtype.itemsize > SCRATCH_LIMIT_BYTES:
        return np.empty(shape, dtype)
    buffer = getattr(_SCRATCH, name, None)
    if buffer is None or buffer.size < size or buffer.dtype != dtype:
        buffer = np.empty(size, dtype)
        setattr(_SCRATCH, name, buffer)
    return buffer[:size].reshape(shape)


def thread_prefix(make, n: int) -> np.ndarray:
    """The first n entries of ``make(N)``, N >= n, an array kept per thread and read only:
    for constant arrays a loop over slabs of rows asks for again and again
    (``np.arange``, ``np.ones``)."""
    if not hasattr(_PREFIXES, "arrays"):
        _PREFIXES.arrays = {}
    array = _PREFIXES.arrays.get(make)
    if array is None or len(array) < n:
        array = _PREFIXES.arrays[make] = make(n)
        array.flags.writeable = False
    return array[:n]


_PREFIXES = threading.local()


#: The largest |x| of every column must lie in this range for :func:`single_precision`.
FLOAT32_COLUMN_RANGE = (1e-15, 1e15)


def weighted_gram(X: np.ndarray, weights: np.ndarray, *, intercept: bool = False) -> np.ndarray:
    r"""Return :math:`A^\top \operatorname{diag}(w) A` for non-negative weights.

    :math:`A = X`, or :math:`A = [1, X]` with ``intercept=True`` (then the
    first row and column are :math:`\sum_i w_i` and :math:`X^\top w`).
    Accumulated over blocks of rows as symmetric rank-k updates (BLAS
    ``dsyrk``) of :math:`\sqrt{w}\,A`, the column of ones included, so that one
    BLAS call per block does all the work; the scaled copy never exceeds one
    block (:data:`GRAM_BLOCK_BYTES`). The result is Fortran-ordered.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    weights : ndarray of shape (n,), non-negative
    intercept : bool, default=False
        Prepend a column of ones to X.
    """
    if sparse.issparse(X):
        return _sparse_weighted_gram(X, weights, intercept)
    n, d = X.shape
    width = d + intercept
    block_rows = max(GRAM_BLOCK_MIN_ROWS, GRAM_BLOCK_BYTES // (8 * width))
    root = np.sqrt(weights, out=thread_scratch("gram-root", (n,)))
    block = thread_scratch("gram", (min(n, block_rows), width))
    gram = np.zeros((width, width), order="F")
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        scaled = block[: stop - start]
        if intercept:
            scaled[:, 0] = root[start:stop]
        np.multiply(root[start:stop, None], X[start:stop], out=scaled[:, intercept:])
        # scaled.T is Fortran-ordered, so BLAS reads it without a copy.
        gram = dsyrk(1.0, scaled.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
    return fill_lower_triangle(gram)


#: Columns copied at a time by :func:`fill_lower_triangle` (a tile stays in cache).
_TILE = 128


def fill_lower_triangle(matrix: np.ndarray) -> np.ndarray:
    """Copy the upper triangle of a square matrix onto its lower one, in place, tile by
    tile (``triu(A) + triu(A, 1).T`` would allocate three matrices of its size)."""
    size = matrix.shape[0]
    for start in range(0, size, _TILE):
        stop = min(size, start + _TILE)
        tile = matrix[start:stop, start:stop]
        lower = _strictly_lower(stop - start)
        tile[lower] = tile.T[lower]
        matrix[stop:, start:stop] = matrix[start:stop, stop:].T
    return matrix


@functools.cache
def _strictly_lower(size: int) -> tuple[np.ndarray, np.ndarray]:
    # Built once per tile size: a Dask pass fills a small Gram matrix per slab of rows,
    # and building the indices each time cost 7 % of the pass.
    rows, columns = np.tril_indices(size, -1)
    rows.flags.writeable = columns.flags.writeable = False
    return rows, columns


def add_to_diagonal(matrix: np.ndarray, values) -> np.ndarray:
    """``matrix[i, i] += values[i]`` in place (any memory order), through a writeable view
    of the diagonal: ``np.diag_indices_from`` builds index arrays, a noticeable share of a
    Newton step on a 200 x 200 system."""
    np.einsum("ii->i", matrix)[...] += values
    return matrix


def rows_times_transpose(X, rows: np.ndarray) -> np.ndarray:
    r""":math:`V X^\top` for rows V (q, d), shape (q, n); X dense or scipy.sparse."""
    if by_rows(X, rows):
        return np.stack([X @ row for row in rows])
    return np.asarray(X @ rows.T).T


def rows_times(X, rows: np.ndarray) -> np.ndarray:
    r""":math:`U X` for rows U (q, n), shape (q, d); X dense or scipy.sparse."""
    if by_rows(X, rows):
        return np.stack([row @ X for row in rows])
    return np.asarray(X.T @ rows.T).T


def by_rows(X, rows: np.ndarray) -> bool:
    """Whether one matrix-vector product per row beats one matrix product: for a few rows
    and X in single precision (1.5-2x at q = 3-5, d = 500-20000, one BLAS thread)."""
    return X.dtype == np.float32 and not sparse.issparse(X) and 1 < len(rows) <= 8


def rows_times_squares(X, rows: np.ndarray) -> np.ndarray:
    r""":math:`U (X \circ X)` for rows U (q, n), shape (q, d): :math:`\sum_i u_{ki} x_{ij}^2`.

    For dense X, slab by slab of rows: each slab squared into a per-thread scratch block
    (:data:`GRAM_BLOCK_BYTES`) and multiplied by BLAS, so that :math:`X \circ X` is never
    formed (a fresh n x d array costs more in page faults than the products at the
    shapes where this is called once: a convergence check, a Hessian diagonal)."""
    if sparse.issparse(X):
        return rows_times(squared_entries(X), rows)
    n, d = X.shape
    slab_rows = max(1, GRAM_BLOCK_BYTES // (8 * max(d, 1)))
    scratch = thread_scratch("squares", (min(n, slab_rows), d))
    total = np.zeros((len(rows), d))
    for start in range(0, n, slab_rows):
        stop = min(n, start + slab_rows)
        squares = np.square(X[start:stop], out=scratch[: stop - start])
        total += rows[:, start:stop] @ squares
    return total


def squared_entries(X):
    """X with every entry squared (a sparse X stays sparse)."""
    return X.multiply(X).tocsr() if sparse.issparse(X) else X**2


def single_precision(X):
    """X as float32 (dense or scipy.sparse), for products whose error may be ~1e-7; None
    when its columns' largest magnitudes leave :data:`FLOAT32_COLUMN_RANGE` (float32
    spans ~1e-38 to 3e38: the margin keeps products of such columns and their
    coefficients, which scale inversely, in range)."""
    if sparse.issparse(X):
        column_max = abs(X).max(axis=0).toarray().ravel()
    else:
        column_max = np.maximum(X.max(axis=0), -X.min(axis=0))
    column_max = column_max[column_max > 0]
    low, high = FLOAT32_COLUMN_RANGE
    if column_max.size and (column_max.min() < low or column_max.max() > high):
        return None
    return X.astype(np.float32)


def _sparse_weighted_gram(X, weights: np.ndarray, intercept: bool) -> np.ndarray:
    r""":func:`weighted_gram` of a scipy.sparse X: the sparse product
    :math:`X^\top (w \odot X)`, returned dense (d x d)."""
    gram = np.asarray((X.T @ X.multiply(weights[:, None]).tocsr()).toarray())
    if not intercept:
        return gram
    cross = np.asarray(X.T @ weights).ravel()
    return np.block([[np.sum(weights), cross], [cross[:, None], gram]])


def weighted_mean_variance(X, sample_weight: np.ndarray):
    r"""Weighted mean and population variance of every column,
    :math:`\bar x_j = \sum_i s_i x_{ij} / \sum_i s_i` and
    :math:`v_j = \sum_i s_i (x_{ij} - \bar x_j)^2 / \sum_i s_i`.

    For a scipy.sparse X, without centring it (which would make it dense):
    :math:`v_j = \sum_i s_i x_{ij}^2 / \sum_i s_i - \bar x_j^2`, clipped at 0.
    """
    if sparse.issparse(X):
        total = np.sum(sample_weight)
        mean = np.asarray(X.T @ sample_weight).ravel() / total
        second = np.asarray(squared_entries(X).T @ sample_weight).ravel() / total
        return mean, np.maximum(second - mean**2, 0.0)
    mean = np.average(X, axis=0, weights=sample_weight)
    variance = np.average((X - mean) ** 2, axis=0, weights=sample_weight)
    return mean, variance


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    r"""Log-softmax along ``axis``, computed as
    :math:`z - z_{\max} - \log(1 + \sum_{j \ne \max} e^{z_j - z_{\max}})`.

    Stable for logits of any size: every exponent is at most 0. The top class is
    left out of the sum and ``log1p`` is used, so the log-probability of a
    near-certain class keeps full relative precision (-1e-20, not 0): PSIS-LOO
    needs those tiny differences.

    Examples
    --------
    >>> import numpy as np
    >>> float(log_softmax(np.array([0.0, 50.0]))[1])
    -1.9287498479639178e-22
    """
    top = np.expand_dims(np.argmax(logits, axis=axis), axis)
    shifted = logits - np.take_along_axis(logits, top, axis)
    others = np.exp(shifted)
    np.put_along_axis(others, top, 0.0, axis)
    shifted -= np.log1p(others.sum(axis=axis, keepdims=True))
    return shifted


def log_sigmoid(t: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    r""":math:`\log\sigma(t) = \min(t, 0) - \log(1 + e^{-|t|})`, for any t.

    Both terms are computed directly, so :math:`\log\sigma(40) = -4.2 \times
    10^{-18}` keeps full precision. With ``out`` (which may be ``t`` itself)
    every pass is in place: about five times faster than
    ``-np.logaddexp(0, -t)`` on large arrays.
    """
    tail = np.abs(t)
    np.negative(tail, out=tail)
    np.exp(tail, out=tail)
    np.log1p(tail, out=tail)
    out = np.minimum(t, 0.0, out=out)
    out -= tail
    return out
