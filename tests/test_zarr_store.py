"""Local Zarr arrays read through numpy memory (``open_zarr``).

References: zarr's own reading of the same store (its ``LocalStore``), the file's
bytes as numpy reads them, and the in-memory fit of the same rows.
"""

import os
import pickle

import numpy as np
import pytest

from problogreg import MAPLogisticRegression, open_zarr

zarr = pytest.importorskip("zarr")
pytest.importorskip("dask.array")
from zarr.abc.store import RangeByteRequest  # noqa: E402

from problogreg.zarr_store import NumpyBufferLocalStore  # noqa: E402

LAYOUTS = {
    "float32, no codec": dict(dtype="f4", chunks=(40, 5), compressors=None),
    "float64, zstd": dict(dtype="f8", chunks=(40, 5)),
    "sharded (byte ranges)": dict(dtype="f8", chunks=(10, 5), shards=(40, 5)),
    "zarr format 2": dict(dtype="f8", chunks=(40, 5), zarr_format=2),
}


def write(path, values, **layout):
    array = zarr.create_array(str(path), shape=values.shape, **layout)
    array[:] = values
    return array


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS)
def test_values_are_zarrs_own(tmp_path, layout):
    values = np.random.default_rng(0).normal(size=(130, 5))
    write(tmp_path / "a", values, **layout)
    by_zarr = zarr.open_array(str(tmp_path / "a"), mode="r")
    expected = by_zarr[:]
    opened = open_zarr(tmp_path / "a")
    assert opened.chunksize == by_zarr.chunks
    result = opened.compute()
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


def test_unwritten_chunks_read_as_the_fill_value(tmp_path):
    array = zarr.create_array(
        str(tmp_path / "a"), shape=(100,), chunks=(25,), dtype="f8", fill_value=-1.5
    )
    array[:25] = 2.0
    np.testing.assert_array_equal(
        open_zarr(tmp_path / "a").compute(), np.r_[np.full(25, 2.0), np.full(75, -1.5)]
    )


def test_whole_objects_land_in_numpy_owned_memory(tmp_path):
    write(
        tmp_path / "a",
        np.arange(200.0).reshape(40, 5),
        dtype="f8",
        chunks=(40, 5),
        compressors=None,
    )
    store = NumpyBufferLocalStore(str(tmp_path / "a"), read_only=True)
    key = "c/0/0"
    on_disk = np.fromfile(tmp_path / "a" / key, np.uint8)
    whole = zarr.core.sync.sync(store.get(key))
    memory = whole.as_array_like()
    # Memory numpy allocated itself, not a view of a bytes object (zarr's LocalStore).
    assert isinstance(memory, np.ndarray) and memory.base is None
    np.testing.assert_array_equal(whole.as_numpy_array(), on_disk)
    part = zarr.core.sync.sync(store.get(key, byte_range=RangeByteRequest(8, 80)))
    np.testing.assert_array_equal(part.as_numpy_array(), on_disk[8:80])
    assert zarr.core.sync.sync(store.get("c/9/0")) is None


def test_a_file_shorter_than_its_size_is_an_error(tmp_path, monkeypatch):
    write(tmp_path / "a", np.ones((40, 5)), dtype="f8", chunks=(40, 5), compressors=None)
    real = os.fstat

    class Larger:
        def __init__(self, result):
            self.st_size = result.st_size + 16

    opened = open_zarr(tmp_path / "a")
    monkeypatch.setattr("problogreg.zarr_store.os.fstat", lambda fd: Larger(real(fd)))
    with pytest.raises(OSError, match=r"c/0/0: the file ended after 1600 of its 1616 bytes"):
        opened.compute()


def test_the_store_travels_to_worker_processes(tmp_path):
    values = np.arange(60.0).reshape(12, 5)
    write(tmp_path / "a", values, dtype="f8", chunks=(4, 5))
    opened = open_zarr(tmp_path / "a")
    travelled = pickle.loads(pickle.dumps(opened))
    np.testing.assert_array_equal(travelled.compute(scheduler="processes"), values)


def test_fit_equals_the_in_memory_fit(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 4)).astype(np.float32)
    y = (rng.random(3000) < 1 / (1 + np.exp(-(X @ [1.0, -0.5, 0.25, 0.0])))).astype(np.int8)
    write(tmp_path / "X", X, dtype="f4", chunks=(700, 4), compressors=None)
    write(tmp_path / "y", y, dtype="i1", chunks=(700,), compressors=None)
    blocked = MAPLogisticRegression(tol=1e-10).fit(
        open_zarr(tmp_path / "X"), open_zarr(tmp_path / "y")
    )
    memory = MAPLogisticRegression(tol=1e-10).fit(X, y)
    np.testing.assert_allclose(blocked.coef_, memory.coef_, rtol=1e-8)
    np.testing.assert_allclose(blocked.intercept_, memory.intercept_, rtol=1e-8)


def test_a_group_names_its_arrays(tmp_path):
    group = zarr.open_group(str(tmp_path / "g"), mode="w")
    group.create_array("features", shape=(4, 2), dtype="f8")
    group.create_array("labels", shape=(4,), dtype="i1")
    np.testing.assert_array_equal(open_zarr(tmp_path / "g", "labels").compute(), np.zeros(4))
    with pytest.raises(FileNotFoundError, match=r"group with arrays \['features', 'labels'\]"):
        open_zarr(tmp_path / "g")
    with pytest.raises(FileNotFoundError, match="no Zarr array at 'target' in"):
        open_zarr(tmp_path / "g", "target")


def test_urls_and_missing_directories_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"is a URL; open it with dask.array.from_zarr\(url\)"):
        open_zarr("s3://bucket/array.zarr")
    with pytest.raises(FileNotFoundError, match="no directory"):
        open_zarr(tmp_path / "missing")
