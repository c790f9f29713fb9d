r"""The likelihood of data held in row blocks (Dask), as sums over the blocks.

Every quantity Newton's method needs is a sum over rows, so over row blocks
:math:`B_1, \dots, B_J`:

.. math::

    \ell(\theta) = \sum_b \ell_{B_b}(\theta), \qquad
    \nabla \ell = \sum_b \nabla \ell_{B_b}, \qquad
    \nabla^2 \ell = \sum_b \nabla^2 \ell_{B_b}.

:class:`BlockedLikelihood` evaluates each block's terms with the in-memory
:class:`~problogreg.core.likelihood.SoftmaxLikelihood` (the same kernels: stable
log-softmax, BLAS ``syrk`` Gram matrices), on whichever worker holds the block,
and adds them up in a tree (:data:`TREE_WIDTH` terms per addition), so the
client receives only one loss, one gradient and one p x p Hessian per pass; the
p x p solve happens on the client. The scheduler is Dask's default: the active
``dask.distributed`` client if there is one, otherwise the local threaded
scheduler. Nothing here starts or stops a cluster.

One pass per Newton iteration: the solver asks for the loss at a trial point,
then (if it is accepted) the gradient and the Hessian there. Each pass therefore
computes all three, and the Hessian of the kind last asked for (exact, or the
subsample's) is computed ahead, unless the last two evaluations went without a
Hessian (L-BFGS, a backtracking line search), when a pass computes only the loss
and the gradient. Answers equal the in-memory ones up to the order of summation.

Dask is imported only inside the functions that need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .likelihood import ParameterShape, RowSubsample, SoftmaxLikelihood

#: Terms added per node of the reduction tree.
TREE_WIDTH = 8
#: Evaluations in a row without a Hessian after which passes stop computing it ahead.
SPECULATION_PATIENCE = 2


def tree_reduce(parts: list, combine):
    """Delayed reduction of ``parts`` by ``combine`` over a tree of width :data:`TREE_WIDTH`."""
    import dask

    combine_many = dask.delayed(_fold, pure=True)
    while len(parts) > 1:
        parts = [
            combine_many(combine, *parts[start : start + TREE_WIDTH])
            for start in range(0, len(parts), TREE_WIDTH)
        ]
    return parts[0]


def _fold(combine, first, *rest):
    for part in rest:
        first = combine(first, part)
    return first


def block_rows_of(array) -> list:
    """The row blocks of a Dask array (one column chunk) as delayed numpy arrays."""
    return list(array.to_delayed().ravel())


def split_by_block(index: np.ndarray, block_starts: np.ndarray) -> list[np.ndarray]:
    """Sorted global row numbers -> the local row numbers within each block."""
    cuts = np.searchsorted(index, block_starts)
    return [index[cuts[b] : cuts[b + 1]] - block_starts[b] for b in range(len(block_starts) - 1)]


@dataclass(frozen=True)
class BlockedSubsample:
    """A subset R of the rows of blocked data: local row numbers per block, and the
    factor n / |R| that makes the subset's Hessian an unbiased estimate of the whole."""

    local_index: list
    scale: float


@dataclass
class _PassResult:
    theta: np.ndarray
    loss: float
    gradient: np.ndarray
    hessian: np.ndarray | None
    rows: BlockedSubsample | None


def _block_likelihood(X, codes, weights, n_classes: int, reference: bool) -> SoftmaxLikelihood:
    return SoftmaxLikelihood(
        np.asarray(X, dtype=np.float64),
        np.asarray(codes, dtype=np.intp),
        np.asarray(weights, dtype=np.float64),
        n_classes,
        reference,
    )


def _block_terms(X, codes, weights, theta, n_classes, reference, want_hessian, index, scale):
    """Loss, gradient and (if wanted) Hessian of one block, by the in-memory kernels;
    with ``index``, the Hessian of those local rows, weighted by ``scale``."""
    likelihood = _block_likelihood(X, codes, weights, n_classes, reference)
    loss, gradient = likelihood.loss_gradient(theta)
    hessian = None
    if want_hessian:
        rows = None
        if index is not None:
            rows = RowSubsample(index, likelihood.X[index], scale * likelihood.sample_weight[index])
        hessian = likelihood.hessian(theta, rows)
    return loss, gradient, hessian


def _add_terms(a, b):
    hessian = None if a[2] is None else a[2] + b[2]
    return a[0] + b[0], a[1] + b[1], hessian


def _block_log_likelihood(X, codes, weights, theta, n_classes, reference):
    likelihood = _block_likelihood(X, codes, weights, n_classes, reference)
    return likelihood.pointwise_log_likelihood(theta)


def _block_rows(X, codes, weights, index):
    return np.asarray(X, dtype=np.float64)[index], np.asarray(codes)[index], weights[index]


def _concatenate_rows(a, b):
    return tuple(np.concatenate([u, v]) for u, v in zip(a, b, strict=True))


class BlockedLikelihood(ParameterShape):
    """:class:`~problogreg.core.likelihood.SoftmaxLikelihood` of data in Dask row blocks.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features), one chunk of columns
    codes : dask array of shape (n_samples,)
        Integer class codes, chunked as the rows of X.
    sample_weight : dask array of shape (n_samples,), chunked as the rows of X
    block_lengths : ndarray of int
        Rows in each block (the chunks may be unknown to Dask).
    total_weight : float
        :math:`S = \\sum_i s_i`.
    n_classes : int
    reference : bool
        As for :class:`~problogreg.core.likelihood.SoftmaxLikelihood`.
    """

    def __init__(
        self, X, codes, sample_weight, block_lengths, total_weight, n_classes: int, reference: bool
    ):
        super().__init__(n_classes, X.shape[1], reference)
        self.X = X
        self.y = codes
        self.sample_weight = sample_weight
        self.n_samples = int(np.sum(block_lengths))
        self.total_weight = float(total_weight)
        self.block_starts = np.concatenate([[0], np.cumsum(block_lengths)]).astype(np.int64)
        self._blocks = list(
            zip(block_rows_of(X), block_rows_of(codes), block_rows_of(sample_weight), strict=True)
        )
        self._last: _PassResult | None = None
        self._hessian_rows: BlockedSubsample | None = None
        self._evaluations_without_hessian = 0

    # -- one pass over the blocks -----------------------------------------------
    def _pass(self, theta: np.ndarray, want_hessian: bool, rows) -> _PassResult:
        import dask

        terms = dask.delayed(_block_terms, pure=True)
        parts = [
            terms(
                X,
                codes,
                weights,
                theta,
                self.n_classes,
                self.reference,
                want_hessian,
                None if rows is None else rows.local_index[b],
                None if rows is None else rows.scale,
            )
            for b, (X, codes, weights) in enumerate(self._blocks)
        ]
        ((loss, gradient, hessian),) = dask.compute(tree_reduce(parts, _add_terms))
        self._last = _PassResult(np.array(theta, copy=True), float(loss), gradient, hessian, rows)
        return self._last

    def _evaluate(self, theta: np.ndarray) -> _PassResult:
        last = self._last
        if last is not None and np.array_equal(last.theta, theta):
            return last
        ahead = self._evaluations_without_hessian < SPECULATION_PATIENCE
        self._evaluations_without_hessian += 1
        return self._pass(theta, ahead, self._hessian_rows)

    def loss(self, theta: np.ndarray) -> float:
        return self._evaluate(theta).loss

    def loss_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        state = self._evaluate(theta)
        return state.loss, state.gradient.copy()

    def hessian(self, theta: np.ndarray, rows: BlockedSubsample | None = None) -> np.ndarray:
        """The Hessian, exact or (``rows``) the subsample's estimate, from the pass at
        ``theta`` when it computed that one, else from a new pass."""
        self._hessian_rows = rows
        self._evaluations_without_hessian = 0
        last = self._last
        if not (
            last is not None
            and last.hessian is not None
            and last.rows is rows
            and np.array_equal(last.theta, theta)
        ):
            last = self._pass(theta, True, rows)
        return last.hessian.copy()

    # -- rows ----------------------------------------------------------------------
    def row_subsample(self, index: np.ndarray) -> BlockedSubsample:
        """The rows ``index`` (sorted global row numbers) for :meth:`hessian`; the
        next passes compute their Hessian ahead.

        Each block's row numbers are persisted once (on the workers, with a
        distributed client), so the passes refer to them instead of sending them again.
        """
        import dask

        local = [dask.delayed(rows, pure=True) for rows in split_by_block(index, self.block_starts)]
        scale = self.n_samples / len(index)
        self._hessian_rows = BlockedSubsample(list(dask.persist(*local)), scale)
        return self._hessian_rows

    def gather_rows(self, index: np.ndarray) -> SoftmaxLikelihood:
        """An in-memory likelihood of the rows ``index`` (sorted global row numbers)."""
        import dask

        take = dask.delayed(_block_rows, pure=True)
        parts = [
            take(X, codes, weights, local)
            for (X, codes, weights), local in zip(
                self._blocks, split_by_block(index, self.block_starts), strict=True
            )
        ]
        ((X, codes, weights),) = dask.compute(tree_reduce(parts, _concatenate_rows))
        return SoftmaxLikelihood(X, codes, weights, self.n_classes, self.reference)

    def pointwise_log_likelihood(self, theta: np.ndarray):
        """Unweighted :math:`\\log p(y_i | x_i, \\theta)` of every row: a lazy Dask array."""
        import dask
        import dask.array as da

        pointwise = dask.delayed(_block_log_likelihood, pure=True)
        blocks = [
            da.from_delayed(
                pointwise(X, codes, weights, theta, self.n_classes, self.reference),
                shape=(int(stop - start),),
                dtype=np.float64,
            )
            for (X, codes, weights), start, stop in zip(
                self._blocks, self.block_starts[:-1], self.block_starts[1:], strict=True
            )
        ]
        return da.concatenate(blocks)
