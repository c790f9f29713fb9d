r"""Local Zarr arrays for fits out of core: each chunk read into numpy memory.

A pass of a blocked fit (:mod:`problogreg.core.blocked`) reads every chunk of X
once. zarr's ``LocalStore``, and the fsspec store that ``dask.array.from_zarr``
opens for a path, read a chunk as a Python ``bytes`` object. The memory of such
an object comes from ``malloc``, page by page: a 100 MB chunk costs about 25,000
page faults on every read, because Dask's workers hand freed memory straight back
to the system. Where transparent huge pages are in the ``madvise`` mode (the
default of Debian and Ubuntu, among others), memory numpy allocates is in huge
pages, so the same read into a numpy array faults about 800 times. Measured on
100 MB float32 chunks in a Dask worker: 68-290 ms per chunk through zarr's
``LocalStore``, 22-27 ms into numpy memory.

:func:`open_zarr` opens an array through :class:`NumpyBufferLocalStore`, which
reads whole objects that way and leaves everything else (byte ranges, as in
sharded arrays; writes; listing) to zarr. Decoding and codecs are zarr's own.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore


def read_file(path: Path) -> np.ndarray:
    """The bytes of the file at ``path`` as a uint8 array, read into numpy memory."""
    with open(path, "rb", buffering=0) as file:
        data = np.empty(os.fstat(file.fileno()).st_size, np.uint8)
        view = memoryview(data)
        filled = 0
        # One read returns at most about 2 GB on Linux, so larger files take several.
        while filled < len(data):
            count = file.readinto(view[filled:])
            if not count:
                raise OSError(
                    f"{path}: the file ended after {filled} of its {len(data)} bytes; "
                    "was it changed while it was read?"
                )
            filled += count
    return data


class NumpyBufferLocalStore(LocalStore):
    """zarr's ``LocalStore``, with whole objects read into numpy-allocated memory.

    Reads of a byte range, and everything but reading, are ``LocalStore``'s.
    """

    async def get(self, key, prototype=None, byte_range=None):
        if byte_range is not None:
            return await super().get(key, prototype, byte_range)
        prototype = default_buffer_prototype() if prototype is None else prototype
        await self._ensure_open()
        try:
            data = await asyncio.to_thread(read_file, self.root / key)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        return prototype.buffer.from_array_like(data)


def open_zarr(path, component: str | None = None, *, chunks=None):
    """Open a Zarr array on the local file system as a lazy Dask array.

    The array reads its chunks through :class:`NumpyBufferLocalStore`; pass it to
    ``fit``, ``predict_proba`` and the like as any Dask array. For arrays elsewhere
    (object stores, HTTP), use ``dask.array.from_zarr`` with their URL.

    Parameters
    ----------
    path : str or path-like
        The directory of the Zarr array, or of the group that holds it.
    component : str, optional
        The array's path inside the group at ``path``.
    chunks : optional
        Dask chunks, as for ``dask.array.from_zarr``; by default the array's own.

    Returns
    -------
    dask.array.Array
    """
    import dask.array as da

    text = os.fspath(path)
    if "://" in text:
        raise ValueError(
            f"open_zarr reads local directories, and {text!r} is a URL; open it with "
            "dask.array.from_zarr(url) instead."
        )
    if not Path(text).is_dir():
        raise FileNotFoundError(f"open_zarr: no directory {text!r}; give the path of a Zarr array.")
    store = NumpyBufferLocalStore(text, read_only=True)
    try:
        array = zarr.open_array(store, path=component or "", mode="r")
    except (FileNotFoundError, ValueError) as err:
        # zarr refuses a group with a ValueError; other ValueErrors are not ours to word.
        hint = _arrays_hint(store, component)
        if not (hint or isinstance(err, FileNotFoundError)):
            raise
        where = repr(text) if component is None else f"{component!r} in {text!r}"
        raise FileNotFoundError(f"open_zarr: no Zarr array at {where}.{hint}") from None
    return da.from_zarr(array, chunks=chunks)


def _arrays_hint(store, component: str | None) -> str:
    """A sentence naming the arrays of the group at ``component``, if it is a group."""
    try:
        group = zarr.open_group(store, path=component or "", mode="r")
    except FileNotFoundError:
        return ""
    names = sorted(group.array_keys())
    return f" It is a Zarr group with arrays {names}: name one as the component." if names else ""
