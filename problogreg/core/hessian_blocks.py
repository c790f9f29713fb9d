"""A Hessian over rows of classes, read and written as one (d + 1) x (d + 1) block per
pair of rows (the likelihood's exact Hessian is assembled this way)."""

from __future__ import annotations

import numpy as np


class HessianBlocks:
    """A Hessian over m rows of classes seen as (d + 1) x (d + 1) blocks, one per pair of
    rows: row k's parameters are its intercept k and its coefficients
    ``m + k d : m + (k + 1) d`` (the flattened order of :class:`ParameterShape`).
    Blocks are read and written through slices, not fancy indexing, which would copy
    the whole index grid."""

    def __init__(self, hessian: np.ndarray, m: int, d: int):
        self.hessian, self.m, self.d = hessian, m, d

    def _coefs(self, k: int) -> slice:
        return slice(self.m + k * self.d, self.m + (k + 1) * self.d)

    def __getitem__(self, rows: tuple[int, int]) -> np.ndarray:
        row, col = rows
        h, ck, cl = self.hessian, self._coefs(row), self._coefs(col)
        block = np.empty((self.d + 1, self.d + 1))
        block[0, 0], block[0, 1:], block[1:, 0], block[1:, 1:] = (
            h[row, col],
            h[row, cl],
            h[ck, col],
            h[ck, cl],
        )
        return block

    def __setitem__(self, rows: tuple[int, int], block: np.ndarray) -> None:
        """Block (row, col), and its transpose as block (col, row)."""
        row, col = rows
        h, ck, cl = self.hessian, self._coefs(row), self._coefs(col)
        for (a, ca), (b, cb), part in (
            ((row, ck), (col, cl), block),
            ((col, cl), (row, ck), block.T),
        ):
            h[a, b], h[a, cb], h[ca, b], h[ca, cb] = (
                part[0, 0],
                part[0, 1:],
                part[1:, 0],
                part[1:, 1:],
            )
