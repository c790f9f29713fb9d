"""Session-wide test setup.

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
import tempfile


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
