"""Predictions for Dask collections: lazy, block by block, with the in-memory methods."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..core.blocked_data import as_feature_array, is_dask_collection


def lazy_on_dask(method):
    """Make a prediction method ``method(self, X, ...)`` return a lazy Dask array when X
    is a Dask array or DataFrame: the method applied to each block of rows. A method
    that returns a tuple of arrays (intervals) returns a tuple of lazy arrays, which
    share one pass over X when computed together (``dask.compute(lower, upper)``).

    The output's shape and dtype are those of the method on one row of zeros.
    """

    @functools.wraps(method)
    def predict(self, X, *args, **kwargs):
        if not is_dask_collection(X):
            return method(self, X, *args, **kwargs)
        check_is_fitted(self)
        X = as_feature_array(self, X, reset=False)
        on_block = functools.partial(_on_block, method, self, args, kwargs)
        sample = on_block(np.zeros((1, X.shape[1]), dtype=X.dtype))
        if isinstance(sample, tuple):
            stacked = X.map_blocks(
                _stacked,
                on_block,
                new_axis=0,
                chunks=((len(sample),), X.chunks[0], *((k,) for k in sample[0].shape[1:])),
                dtype=sample[0].dtype,
                meta=np.stack(sample)[:, :0],
            )
            return tuple(stacked[k] for k in range(len(sample)))
        if sample.ndim == 1:
            return X.map_blocks(on_block, drop_axis=1, dtype=sample.dtype, meta=sample[:0])
        return X.map_blocks(
            on_block, chunks=(X.chunks[0], sample.shape[1:]), dtype=sample.dtype, meta=sample[:0]
        )

    return predict


def _on_block(method, estimator, args, kwargs, block):
    if block.shape[0] == 0:
        # scikit-learn refuses empty input (a filtered Dask DataFrame can have empty
        # partitions): the output for one row of zeros, without its row.
        one_row = _on_block(method, estimator, args, kwargs, np.zeros((1, block.shape[1])))
        return tuple(part[:0] for part in one_row) if isinstance(one_row, tuple) else one_row[:0]
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        # The fitted column names, so that scikit-learn's name check passes.
        block = pd.DataFrame(block, columns=names)
    output = method(estimator, block, *args, **kwargs)
    if isinstance(output, tuple):
        return tuple(np.asarray(part) for part in output)
    return np.asarray(output)


def _stacked(block, on_block):
    return np.stack(on_block(block))
