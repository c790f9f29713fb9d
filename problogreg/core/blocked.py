r"""The likelihood of data held in row blocks (Dask), as sums over the blocks.

Every quantity Newton's method needs is a sum over rows, so over row blocks
:math:`B_1, \dots, B_J`:

.. math::

    \ell(\theta) = \sum_b \ell_{B_b}(\theta), \qquad
    \nabla \ell = \sum_b \nabla \ell_{B_b}, \qquad
    \nabla^2 \ell = \sum_b \nabla^2 \ell_{B_b}.

:class:`BlockedLikelihood` evaluates each block's terms on whichever worker holds
the block, by :func:`block_terms`: one read of the block, in slabs of rows small
enough to stay in cache (:data:`SLAB_BYTES`), each slab's loss, gradient and
Hessian by the in-memory
:class:`~problogreg.core.likelihood.SoftmaxLikelihood` (the same kernels: stable
log-softmax, BLAS ``syrk`` Gram matrices), so no temporary of the block's size
is formed and float32 or integer data are converted to float64 a slab at a time.
The blocks' terms are added up in a tree (:data:`TREE_WIDTH` terms per
addition), so the client receives only one loss, one gradient and one p x p
Hessian per pass; the p x p solve happens on the client. The scheduler is Dask's
default: the active ``dask.distributed`` client if there is one, otherwise the
local threaded scheduler. Nothing here starts or stops a cluster.

One pass per Newton iteration: the solver asks for the loss at a trial point,
then (if it is accepted) the gradient and the Hessian there. Each pass therefore
computes all three (and the largest log-likelihood of a row, which the
separation check asks for at the end), unless the last two evaluations went
without a Hessian (L-BFGS, a backtracking line search), when a pass computes
only the loss and the gradient. Answers equal the in-memory ones up to the order
of summation.

The first :data:`SAMPLE_HESSIAN_STEPS` steps from the mode of the rows sampled in
the validation pass (:meth:`BlockedLikelihood.hessian_sample`) take the Hessian of
that sample, weighted up to the whole, instead of a pass's: their passes compute
only the loss and the gradient, about a fifth of the work of a pass with the Gram
matrices (in memory; out of core, where reading dominates, about two fifths). The
sample's Hessian has a relative error of about :math:`\sqrt{p/|R|}` (0.03 for the
1000 rows per parameter the validation pass draws for binary data), so each such step
shrinks the distance to the optimum about that much; two of them leave one exact step
to the optimum and a pass to confirm it. (Measured on 12 problems of 2e6 rows, 50
features, signals from weak to strong: exact Newton from the sample's mode took three
or four passes with the Hessian, one step on the sample's Hessian left two or three,
two steps left two on all 12, from samples of 200,000 rows and of 51,000.)

Dask is imported only inside the functions that need it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .likelihood import ParameterShape, SoftmaxLikelihood
from .numerics import GRAM_BLOCK_BYTES, thread_prefix, thread_scratch

#: Terms added per node of the reduction tree.
TREE_WIDTH = 8
#: Evaluations in a row without a Hessian after which passes stop computing it ahead.
SPECULATION_PATIENCE = 2
#: Newton steps from the sample's mode that take the sample's Hessian.
SAMPLE_HESSIAN_STEPS = 2
#: Float64 bytes of the rows of a block evaluated together, so that the slab stays in
#: cache from the logits to the Gram update: half a block of the weighted Gram matrix
#: (one BLAS call per slab). With two workers computing side by side, 2 MB slabs took
#: 10-20 % less time per 500000 x 50 block than 4 MB ones; 1 MB ones were no faster,
#: 0.5 MB ones slower.
SLAB_BYTES = GRAM_BLOCK_BYTES // 2


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


def slab_rows(n_features: int, slab_bytes: int | None = None) -> int:
    """Rows per slab: ``slab_bytes`` of float64 (by default :data:`SLAB_BYTES`, the slabs
    of :func:`block_terms`), but at least 1024."""
    slab_bytes = SLAB_BYTES if slab_bytes is None else slab_bytes
    return max(1024, slab_bytes // (8 * max(n_features, 1)))


def encode_labels(labels, classes: np.ndarray) -> np.ndarray:
    """Class codes of raw labels: ``classes[codes[i]] == labels[i]``."""
    return np.searchsorted(classes, np.asarray(labels)).astype(np.intp, copy=False)


@dataclass
class BlockTerms:
    """One block's (or a sum of blocks') share of a pass: loss, gradient, Hessian (None
    when not asked for) and the largest unweighted log-likelihood of a row."""

    loss: float
    gradient: np.ndarray
    hessian: np.ndarray | None
    largest_log_likelihood: float

    def __add__(self, other: BlockTerms) -> BlockTerms:
        hessian = None if self.hessian is None else self.hessian + other.hessian
        return BlockTerms(
            self.loss + other.loss,
            self.gradient + other.gradient,
            hessian,
            max(self.largest_log_likelihood, other.largest_log_likelihood),
        )


def float64_slabs(X, rows: int):
    """Consecutive slabs of ``rows`` rows of X (the last may be shorter; one empty slab if
    X has no rows), each as ``(rows of X, C-ordered float64 array)``.

    Slabs are views where X is C-ordered, aligned float64 already; otherwise they are
    converted into one buffer kept per thread (:func:`~problogreg.core.numerics.thread_scratch`),
    reused by every slab and every block, so that no temporary of the block's size is
    formed: each slab is valid only until the next one is made in the same thread.
    """
    n = len(X)
    # Blocks Dask moved between workers can sit unaligned in the received bytes: numpy
    # and BLAS read those three times slower than a copy costs.
    convert = X.dtype != np.float64 or not (X.flags.c_contiguous and X.flags.aligned)
    buffer = thread_scratch("slab-float64", (min(n, rows), X.shape[1])) if convert else None
    for start in range(0, max(n, 1), rows):
        part = slice(start, min(n, start + rows))
        slab = X[part]
        if convert:
            slab = buffer[: part.stop - start]
            np.copyto(slab, X[part], casting="unsafe")
        yield part, slab


def slab_likelihoods(X, labels, weights, classes, reference: bool):
    """The in-memory likelihood of each slab of rows of one block (float64 rows, codes by
    ``classes``, unit weights when ``weights`` is None); one slab, empty, for an empty
    block, so that it contributes zeros. Their per-sample arrays, like the converted
    rows, live in per-thread scratch memory: each likelihood is valid only until the next
    one is made in the same thread (see :func:`float64_slabs`).
    """
    for part, features in float64_slabs(X, slab_rows(X.shape[1])):
        n = len(features)
        yield SoftmaxLikelihood(
            features,
            encode_labels(labels[part], classes),
            thread_prefix(np.ones, n) if weights is None else np.asarray(weights[part], float),
            len(classes),
            reference,
            scratch="slab",
        )


def block_terms(X, labels, weights, theta, classes, reference: bool, want_hessian: bool):
    """:class:`BlockTerms` of one block of rows, read once, slab by slab.

    Parameters
    ----------
    X : ndarray of shape (n, d), any real dtype
    labels : ndarray of shape (n,)
        Raw labels, encoded here by ``classes`` (sorted).
    weights : ndarray of shape (n,) or None
        Sample weights; None for unit weights.
    theta : ndarray
        Likelihood coordinates.
    classes : ndarray
    reference, want_hessian : bool
    """
    total = None
    for likelihood in slab_likelihoods(X, labels, weights, classes, reference):
        loss, gradient = likelihood.loss_gradient(theta)
        part = BlockTerms(
            loss,
            gradient,
            likelihood.hessian(theta) if want_hessian else None,
            likelihood.largest_log_likelihood(theta),
        )
        total = part if total is None else total + part
    return total


def _block_log_likelihood(X, labels, theta, classes, reference):
    return np.concatenate(
        [
            likelihood.pointwise_log_likelihood(theta)
            for likelihood in slab_likelihoods(X, labels, None, classes, reference)
        ]
    )


@dataclass(frozen=True)
class RowSample:
    """Rows drawn at random from every block (in the validation pass): features, codes,
    the sample weights, and each row's stratum factor (rows in its block / rows drawn
    from it), so that :math:`\\sum_{i \\in R} f_i s_i\\,(\\cdot)` estimates the sum over
    all rows."""

    X: np.ndarray
    codes: np.ndarray
    sample_weight: np.ndarray
    stratum_factor: np.ndarray


class BlockedLikelihood(ParameterShape):
    """:class:`~problogreg.core.likelihood.SoftmaxLikelihood` of data in Dask row blocks.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features), one chunk of columns
    labels : dask array of shape (n_samples,)
        Raw labels, chunked as the rows of X.
    sample_weight : dask array of shape (n_samples,), chunked as the rows of X, or None
        None for unit weights.
    classes : ndarray of shape (n_classes,)
        The sorted labels; class codes index them.
    block_lengths : ndarray of int
        Rows in each block (the chunks may be unknown to Dask).
    total_weight : float
        :math:`S = \\sum_i s_i`.
    reference : bool
        As for :class:`~problogreg.core.likelihood.SoftmaxLikelihood`.
    sample : RowSample
        Rows drawn in the validation pass, for a warm start and the separation check.
    """

    def __init__(
        self,
        X,
        labels,
        sample_weight,
        classes: np.ndarray,
        block_lengths,
        total_weight,
        reference: bool,
        sample: RowSample,
    ):
        super().__init__(len(classes), X.shape[1], reference)
        self.X = X
        self.labels = labels
        self.sample_weight = sample_weight
        self.classes = classes
        self.sample = sample
        self.n_samples = int(np.sum(block_lengths))
        self.total_weight = float(total_weight)
        self.block_lengths = np.asarray(block_lengths)
        weights = [None] * X.numblocks[0] if sample_weight is None else block_rows_of(sample_weight)
        self._blocks = list(zip(block_rows_of(X), block_rows_of(labels), weights, strict=True))
        self._last: tuple[np.ndarray, BlockTerms] | None = None
        self._evaluations_without_hessian = 0
        self._gradient_passes_planned = 0

    # -- one pass over the blocks -----------------------------------------------
    def _pass(self, theta: np.ndarray, want_hessian: bool) -> BlockTerms:
        import dask

        terms = dask.delayed(block_terms, pure=True)
        parts = [
            terms(X, labels, weights, theta, self.classes, self.reference, want_hessian)
            for X, labels, weights in self._blocks
        ]
        (total,) = dask.compute(tree_reduce(parts, operator.add))
        self._last = (np.array(theta, copy=True), total)
        return total

    def _evaluate(self, theta: np.ndarray) -> BlockTerms:
        if self._last is not None and np.array_equal(self._last[0], theta):
            return self._last[1]
        if self._gradient_passes_planned:
            self._gradient_passes_planned -= 1
            ahead = False
        else:
            ahead = self._evaluations_without_hessian < SPECULATION_PATIENCE
        self._evaluations_without_hessian += 1
        return self._pass(theta, ahead)

    def loss(self, theta: np.ndarray) -> float:
        return self._evaluate(theta).loss

    def loss_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        terms = self._evaluate(theta)
        return terms.loss, terms.gradient.copy()

    def hessian(self, theta: np.ndarray, rows: RowSample | None = None) -> np.ndarray:
        """The exact Hessian, from the pass at ``theta`` when it computed one, else from a
        new pass; with ``rows`` (the sample, :meth:`hessian_sample`), its estimate from
        the sampled rows, weighted up to the whole, formed on the client without a pass."""
        self._evaluations_without_hessian = 0
        if rows is not None:
            if rows is not self.sample:
                raise ValueError(
                    "Hessians of data in Dask blocks are estimated from the validation "
                    "pass's sample (hessian_sample) only."
                )
            return self.sample_likelihood.hessian(theta)
        terms = self._evaluate(theta)
        if terms.hessian is None:
            terms = self._pass(theta, True)
        return terms.hessian.copy()

    def largest_log_likelihood(self, theta: np.ndarray) -> float:
        """:math:`\\max_i \\log p(y_i | x_i, \\theta)`, from the pass at ``theta``."""
        return self._evaluate(theta).largest_log_likelihood

    def hessian_sample(self, steps: int) -> RowSample | None:
        """The sample, to estimate the Hessian from in the first ``steps`` Newton steps
        (``rows`` of :meth:`hessian`), or None when it holds every row (its Hessian is
        then exact, and a pass's costs no more).

        The next ``steps`` passes compute no Hessian ahead: the solver that asked for the
        sample takes those steps with the sample's. (Should it take an exact one there
        after all, that costs one more pass.)
        """
        if len(self.sample.codes) >= self.n_samples:
            return None
        self._gradient_passes_planned = steps
        return self.sample

    # -- rows ----------------------------------------------------------------------
    @cached_property
    def sample_likelihood(self) -> SoftmaxLikelihood:
        """The in-memory likelihood of the sampled rows, each weighted by its stratum
        factor: an estimate of this likelihood (for a warm start and the first steps'
        Hessians)."""
        sample = self.sample
        return SoftmaxLikelihood(
            sample.X,
            sample.codes,
            sample.sample_weight * sample.stratum_factor,
            self.n_classes,
            self.reference,
        )

    def sampled_rows(self, n_rows: int, random_state: int = 0) -> SoftmaxLikelihood:
        """The in-memory likelihood (sample weights as given) of ``n_rows`` of the sampled
        rows, chosen at random (all of them if there are no more)."""
        sample = self.sample
        index = np.arange(len(sample.codes))
        if n_rows < len(index):
            index = np.sort(np.random.default_rng(random_state).choice(index, n_rows, False))
        return SoftmaxLikelihood(
            sample.X[index],
            sample.codes[index],
            sample.sample_weight[index],
            self.n_classes,
            self.reference,
        )

    def pointwise_log_likelihood(self, theta: np.ndarray):
        """Unweighted :math:`\\log p(y_i | x_i, \\theta)` of every row: a lazy Dask array."""
        import dask
        import dask.array as da

        pointwise = dask.delayed(_block_log_likelihood, pure=True)
        blocks = [
            da.from_delayed(
                pointwise(X, labels, theta, self.classes, self.reference),
                shape=(int(length),),
                dtype=np.float64,
            )
            for (X, labels, _), length in zip(self._blocks, self.block_lengths, strict=True)
        ]
        return da.concatenate(blocks)
