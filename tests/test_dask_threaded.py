"""Dask fits without a distributed client: the local threaded scheduler.

Kept apart from tests/test_dask.py, whose module-wide LocalCluster client would
otherwise be the default scheduler here. Reference: the in-memory fit of the same
rows, which the blocked fit must reproduce to 1e-8.
"""

import pytest
from test_dask import as_dask, assert_same_fit, binary_data

from problogreg import MAPLogisticRegression

distributed = pytest.importorskip("distributed")


def test_threaded_scheduler_without_a_client():
    """No client: the local threaded scheduler, and no cluster is started for the user."""
    X, y = binary_data(n=2000)
    assert_same_fit(MAPLogisticRegression().fit(*as_dask(X, y)), MAPLogisticRegression().fit(X, y))
    with pytest.raises(ValueError):
        distributed.default_client()
