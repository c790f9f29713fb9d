"""Session-wide test setup (unit tests under tests/ and doctests under problogreg/).

Every test that samples with NUTS is marked ``slow``, so ``make test-fast``
(``-m "not slow"``) stays fast: doctests that fit a PyMCLogisticRegression are
marked here, and the ``nuts_only_when_slow`` fixture fails any other test that
starts a NUTS run without the marker.

PyTensor compiles each model's log-density once and caches the result on disk.
The tests keep that cache under pytest's cache directory (``.pytest_cache``),
so repeated runs start warm and the user's own cache (``~/.pytensor``) is left
alone. PyTensor reads its flags once, at import: hence ``pytest_configure``,
which runs before any test module is imported. A ``base_compiledir`` already
given in ``PYTENSOR_FLAGS`` wins.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

import pytest


def pytest_configure(config):
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "base_compiledir" not in flags:
        if getattr(config, "cache", None) is not None:
            compile_dir = config.cache.mkdir("pytensor")
        else:  # cache provider disabled (-p no:cacheprovider)
            compile_dir = tempfile.mkdtemp(prefix="pytensor-")
        extra = f"base_compiledir={compile_dir}"
        os.environ["PYTENSOR_FLAGS"] = f"{flags},{extra}" if flags else extra
    # PyMC logs every sampling run at INFO level; the tests check results instead.
    logging.getLogger("pymc").setLevel(logging.WARNING)


def pytest_collection_modifyitems(config, items):
    for item in items:
        docstring = getattr(getattr(item, "dtest", None), "docstring", None) or ""
        if "PyMCLogisticRegression(" in docstring:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def nuts_only_when_slow(request, monkeypatch):
    """Fail a test that runs NUTS without ``@pytest.mark.slow`` (it would slow the fast suite)."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(*args, **kwargs):
        raise AssertionError(
            f"{request.node.nodeid} samples with NUTS: mark it @pytest.mark.slow "
            "(the fast suite, make test-fast, runs without NUTS)."
        )

    monkeypatch.setattr("problogreg.models.nuts.run_nuts", refuse)


@pytest.fixture(autouse=True)
def close_figures():
    """Close the figures a test (or doctest) opened: pyplot keeps them, and a worker
    that runs more than 20 figure tests would hit matplotlib's too-many-figures warning."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
