r"""Logistic and softmax log-likelihood with gradient and Hessian (pure numpy).

One formulation covers every model of the package. With ``m`` rows of
parameters (intercept :math:`b_k`, coefficients :math:`w_k`), the linear
predictor of sample :math:`i` is :math:`\eta_{ik} = b_k + x_i^\top w_k` and the
class logits are

* ``reference=False`` (symmetric softmax, ``m = K``): :math:`z_i = \eta_i`;
* ``reference=True`` (``m = K - 1``): :math:`z_i = (0, \eta_i)`, class 0 is the
  reference.  Binary logistic regression is the case ``K = 2``:
  :math:`p(y=1) = \sigma(\eta)`.

With sample weights :math:`s_i`, the negative log-likelihood, its gradient and
its Hessian are

.. math::

    \ell(\theta) &= -\sum_i s_i \log p_{i y_i},
    \qquad \log p_{ik} = z_{ik} - \operatorname{logsumexp}_j z_{ij},\\
    \partial \ell / \partial w_k &= X^\top r_k, \quad
    \partial \ell / \partial b_k = \textstyle\sum_i r_{ik},
    \quad r_{ik} = s_i (p_{ik} - [y_i = k]),\\
    \partial^2 \ell / \partial w_k \partial w_l^\top &= X^\top \operatorname{diag}(c_{kl}) X,
    \quad c_{kl,i} = s_i\, p_{ik} (\delta_{kl} - p_{il}).

Parameters are flattened intercepts first: ``theta = [b_1..b_m, w_1, .., w_m]``.

Numerical notes: probabilities come from log-sum-exp, never ``log(sigmoid)``;
every weighted Gram matrix is BLAS ``syrk`` on :math:`\sqrt{c}\,X`, because
each :math:`c_{kl}` has one sign (:math:`c_{kk} \ge 0`, :math:`c_{kl} \le 0`
for :math:`k \ne l`); the intercept rows are :math:`X^\top c_{kl}`, and nothing
of size n x n or n x d x d is formed.

Speed notes: the probabilities at the last ``theta`` are cached, so a solver
asking for the loss, then the gradient, then the Hessian at one point computes
:math:`X\theta` and the softmax once. Per-sample arrays are class-major,
shape (K, n), so every class's column of probabilities is contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from .hessian_blocks import HessianBlocks
from .layout import split_rows
from .numerics import (
    rows_times,
    rows_times_transpose,
    single_precision,
    squared_entries,
    thread_prefix,
    thread_scratch,
    weighted_gram,
)


def _log_softmax(log_proba: np.ndarray, buffers: _Buffers) -> None:
    """Turn class-major logits (K, n) into log-probabilities, and fill ``buffers.proba``.

    The in-place, buffered form of :func:`~problogreg.core.numerics.log_softmax`
    for the solver's hot loop: the top class is left out of the sum, which goes
    through log1p.
    """
    n = log_proba.shape[1]
    top = np.argmax(log_proba, axis=0) * n + np.arange(n)
    np.max(log_proba, axis=0, out=buffers.column)
    log_proba -= buffers.column
    proba = np.exp(log_proba, out=buffers.proba)
    proba.ravel()[top] = 0.0
    others = np.sum(proba, axis=0, out=buffers.column)
    proba.ravel()[top] = 1.0
    log_proba -= np.log1p(others, out=buffers.log_total)
    others += 1.0
    proba /= others


def _log_sigmoid_pair(log_proba: np.ndarray, buffers: _Buffers) -> None:
    r"""The two-class case of :func:`_log_softmax`, on vectors of length n.

    With logits :math:`(0, \eta)`: :math:`\log p_0 = \min(-\eta, 0) - \log(1 +
    e^{-|\eta|})` and :math:`\log p_1 = \min(\eta, 0) - \log(1 + e^{-|\eta|})`, each
    computed directly, so the likelier class keeps full relative precision
    (:math:`\log p_1 = -4.2 \times 10^{-18}` at :math:`\eta = 40`, not 0).
    """
    eta = log_proba[1]
    tail = np.abs(eta, out=buffers.column)
    np.negative(tail, out=tail)
    np.exp(tail, out=tail)
    log_total = np.log1p(tail, out=buffers.log_total)
    np.negative(eta, out=log_proba[0])
    np.minimum(log_proba, 0.0, out=log_proba)
    log_proba -= log_total
    np.exp(log_proba, out=buffers.proba)


def curvature_factors(proba: np.ndarray, sample_weight: np.ndarray, reference: bool) -> np.ndarray:
    r"""Per-sample factors G of the likelihood's curvature at class probabilities (K, n),
    shape (r, m, n), over the free classes (all but class 0 if ``reference``).

    The Hessian is :math:`\sum_i a_i a_i^\top \otimes C_i` with
    :math:`C_i = s_i(\operatorname{diag}(p_i) - p_i p_i^\top)` over the free
    classes; :math:`C_i = \sum_c g_{ci} g_{ci}^\top` with r = K - 1 factors, the
    rank of the curvature over all K classes. Two classes: :math:`g = \sqrt{s p_0 p_1}`.
    Otherwise, with :math:`u = \sqrt{p}` (a unit vector),
    :math:`\operatorname{diag}(p) - pp^\top = D^{1/2}(I - uu^\top)D^{1/2}`, and
    :math:`I - uu^\top = \sum_{c \ne j} h_c h_c^\top` over the columns of the
    Householder reflection :math:`I - vv^\top/(1 + u_j)`, :math:`v = u + e_j`, which
    maps u to :math:`-e_j`; j is the sample's most probable class, so
    :math:`1 + u_j \ge 1 + K^{-1/2}` and nothing cancels, even when some
    :math:`p_k` underflow. :math:`g_{ck} = \sqrt{s p_k}\,(\delta_{kc} - v_c v_k / (1 + u_j))`
    on the free rows k.
    """
    if proba.shape[0] == 2:
        return np.sqrt(sample_weight * proba[0] * proba[1])[None, None, :]
    K, n = proba.shape
    u = np.sqrt(proba)
    top = np.argmax(proba, axis=0)
    v = u.copy()
    v[top, np.arange(n)] += 1.0
    beta = 1.0 / (1.0 + u[top, np.arange(n)])
    # full[c, k, i] = sqrt(s p_k) (delta_kc - beta v_c v_k), then column c = top dropped.
    full = -(beta * v)[:, None, :] * v[None, :, :]
    full[np.arange(K), np.arange(K)] += 1.0
    full *= np.sqrt(sample_weight * proba)[None, :, :]
    kept = np.arange(K - 1)[:, None] + (np.arange(K - 1)[:, None] >= top[None, :])
    root = np.take_along_axis(full, kept[:, None, :], axis=0)
    return root[:, 1:, :] if reference else root


class _Buffers:
    """Per-sample scratch arrays, class-major (K, n), reused by every evaluation.

    Allocating arrays this size afresh costs page faults comparable to the
    arithmetic done on them. With ``scratch`` (a name) they are views of one per-thread
    array (:func:`~problogreg.core.numerics.thread_scratch`).
    """

    def __init__(self, n_classes: int, n_samples: int, scratch: str | None = None):
        shape = (3 * n_classes + 3, n_samples)
        rows = np.empty(shape) if scratch is None else thread_scratch(scratch, shape)
        k = n_classes
        self.log_proba, self.proba, self.residual = rows[:k], rows[k : 2 * k], rows[2 * k : 3 * k]
        self.column, self.log_total, self.curvature = rows[3 * k :]


@dataclass(frozen=True)
class RowSubsample:
    """A subset R of the samples for a Hessian estimate: their indices, their rows of X,
    and their weights times n / |R|."""

    index: np.ndarray
    X: np.ndarray
    sample_weight: np.ndarray


@dataclass
class _Evaluation:
    """Everything computed at one ``theta`` (arrays live in the :class:`_Buffers`)."""

    theta: np.ndarray
    log_proba: np.ndarray
    proba: np.ndarray
    loss: float
    gradient: np.ndarray | None = None


class ParameterShape:
    """The parameters of a softmax likelihood: m rows of classes (K, or K - 1 with a
    reference class), each an intercept and d coefficients, flattened intercepts first."""

    def __init__(self, n_classes: int, n_features: int, reference: bool):
        if n_classes == 2 and not reference:
            raise ValueError("Two classes always use the reference (logistic) form.")
        self.n_classes = n_classes
        self.reference = reference
        self.n_rows = n_classes - 1 if reference else n_classes
        self.n_features = n_features
        self.n_params = self.n_rows * (n_features + 1)

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split ``theta`` into intercepts (m,) and coefficients (m, d)."""
        return split_rows(theta, self.n_rows, self.n_features)

    @staticmethod
    def pack(intercept: np.ndarray, coef: np.ndarray) -> np.ndarray:
        return np.concatenate([np.ravel(intercept), np.ravel(coef)])


class SoftmaxLikelihood(ParameterShape):
    """Negative log-likelihood of a (multinomial) logistic regression.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Integer class codes in ``0..n_classes-1``.
    sample_weight : ndarray of shape (n_samples,)
    n_classes : int
    reference : bool
        True for the reference parametrisation (class 0 fixed at zero; always
        the case for two classes), False for the symmetric one.
    scratch : str, optional
        Keep the per-sample arrays in per-thread scratch memory under this name
        (:func:`~problogreg.core.numerics.thread_scratch`), for likelihoods of
        consecutive slabs of rows: such a likelihood is valid only until the next one
        with the same name is made in the same thread.
    """

    def __init__(self, X, y, sample_weight, n_classes: int, reference: bool, *, scratch=None):
        super().__init__(n_classes, X.shape[1], reference)
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        n = len(y)
        self.n_samples = n
        self.total_weight = float(np.sum(sample_weight))
        self._scratch = scratch
        # Flat index of (y_i, i) in a class-major (K, n) array, and s_i [y_i = k].
        if scratch is None:
            index, observed = np.empty(n, np.intp), np.zeros((n_classes, n))
        else:
            index = thread_scratch(f"{scratch}-index", (n,), np.intp)
            observed = thread_scratch(f"{scratch}-observed", (n_classes, n))
            observed.fill(0.0)
        np.multiply(y, n, out=index, dtype=np.intp)
        self._observed_index = np.add(index, thread_prefix(np.arange, n), out=index)
        self._observed_weight = observed
        observed.ravel()[index] = sample_weight
        self._last: _Evaluation | None = None
        self._buffers: _Buffers | None = None

    # -- evaluation --------------------------------------------------------
    def _logits_by_class(
        self, theta: np.ndarray, X: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Class-major logits (K, n), the reference class's row zero."""
        intercept, coef = self.unpack(theta)
        logits = np.empty((self.n_classes, X.shape[0])) if out is None else out
        free = logits[1:] if self.reference else logits
        if self.reference:
            logits[0] = 0.0
        if sparse.issparse(X):
            free[...] = rows_times_transpose(X, coef)
        else:
            np.matmul(coef, X.T, out=free)
        free += intercept[:, None]
        return logits

    def _evaluate(self, theta: np.ndarray) -> _Evaluation:
        """Log-probabilities, probabilities and loss at ``theta`` (cached for the last one)."""
        last = self._last
        if last is not None and np.array_equal(last.theta, theta):
            return last
        if self._buffers is None:
            self._buffers = _Buffers(self.n_classes, len(self.y), self._scratch)
        buffers = self._buffers
        self._last = None  # its arrays are overwritten now
        log_proba = self._logits_by_class(theta, self.X, out=buffers.log_proba)
        if self.n_classes == 2:
            _log_sigmoid_pair(log_proba, buffers)
        else:
            _log_softmax(log_proba, buffers)
        loss = -float(np.vdot(self._observed_weight, log_proba))
        self._last = _Evaluation(np.array(theta, copy=True), log_proba, buffers.proba, loss)
        return self._last

    def free_class_probabilities(self, theta: np.ndarray) -> np.ndarray:
        """Probabilities of the classes with parameters (all but a reference class),
        class-major, shape (m, n); a copy."""
        proba = self._evaluate(theta).proba
        return (proba[1:] if self.reference else proba).copy()

    def pointwise_log_likelihood(self, theta: np.ndarray) -> np.ndarray:
        """Unweighted :math:`\\log p(y_i | x_i, \\theta)` for every sample, shape (n,)."""
        return np.take(self._evaluate(theta).log_proba, self._observed_index)

    def largest_log_likelihood(self, theta: np.ndarray) -> float:
        """:math:`\\max_i \\log p(y_i | x_i, \\theta)` (-inf without samples), the values
        gathered into a scratch buffer rather than a new array."""
        log_proba = self._evaluate(theta).log_proba
        observed = np.take(log_proba, self._observed_index, out=self._buffers.column)
        return float(np.max(observed, initial=-np.inf))

    def loss(self, theta: np.ndarray) -> float:
        """:math:`\\ell(\\theta) = -\\sum_i s_i \\log p_{i y_i}`."""
        return self._evaluate(theta).loss

    def loss_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        state = self._evaluate(theta)
        if state.gradient is None:
            # r_ik = s_i (p_ik - [y_i = k]), class-major, over the free classes.
            first = 1 if self.reference else 0
            residual = np.multiply(
                state.proba[first:], self.sample_weight, out=self._buffers.residual[first:]
            )
            residual -= self._observed_weight[first:]
            state.gradient = self.pack(residual.sum(axis=1), rows_times(self.X, residual))
        return state.loss, state.gradient.copy()

    def row_subsample(self, index: np.ndarray) -> RowSubsample:
        """The samples ``index`` (a random subset), for :meth:`hessian` (``rows=``)."""
        scale = len(self.y) / len(index)
        return RowSubsample(index, self.X[index], scale * self.sample_weight[index])

    @cached_property
    def X_squared(self):
        """X with every entry squared, for the Hessian's diagonal (formed on first use)."""
        return squared_entries(self.X)

    @cached_property
    def X_single(self):
        """X in single precision, for approximate Hessian-vector products (formed on first
        use); None when some entry would overflow or vanish in single precision."""
        return single_precision(self.X)

    def curvature_product(self, theta: np.ndarray, directions: np.ndarray) -> np.ndarray:
        r""":math:`C_i u_i` for per-sample directions u (q, m, n) over the free classes:
        :math:`s_i p_{ik} (u_{ik} - \sum_l p_{il} u_{il})` (two classes:
        :math:`s_i p_0 p_1 u_i`), the curvature of :meth:`hessian`."""
        proba = self._evaluate(theta).proba
        s = self.sample_weight
        if self.n_classes == 2:
            return directions * (s * proba[0] * proba[1])
        free = proba[1:] if self.reference else proba
        centred = directions - np.einsum("kn,qkn->qn", free, directions)[:, None, :]
        return centred * (s * free)

    def hessian_product(
        self, theta: np.ndarray, vectors: np.ndarray, *, single: bool = False
    ) -> np.ndarray:
        r""":math:`H v` for likelihood-coordinate vectors (q, n_params), without forming H:
        two passes over X, :math:`u_{ik} = \delta b_k + x_i^\top \delta w_k`, then
        :math:`\sum_i C_i u_i` and :math:`X^\top (C u)_k` (:meth:`curvature_product`).

        With ``single=True`` both passes read X in single precision (:attr:`X_single`,
        which must not be None): two to three times faster, with a relative error near
        1e-7 -- for the conjugate-gradient steps of Newton-CG, solved far less exactly.
        """
        vectors = np.atleast_2d(vectors)
        intercept, coef = self.unpack(vectors)
        m, d, n = self.n_rows, self.n_features, len(self.y)
        X, dtype = (self.X_single, np.float32) if single else (self.X, np.float64)
        coef = coef.reshape(-1, d).astype(dtype, copy=False)
        directions = rows_times_transpose(X, coef).astype(np.float64).reshape(-1, m, n)
        directions += intercept[:, :, None]
        curved = self.curvature_product(theta, directions)
        coef_part = rows_times(X, curved.reshape(-1, n).astype(dtype, copy=False))
        coef_part = coef_part.astype(np.float64, copy=False).reshape(len(vectors), -1)
        return np.concatenate([curved.sum(axis=2), coef_part], axis=1)

    def hessian_blocks_diagonal(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""The intercepts' block of :meth:`hessian` (m, m), :math:`\sum_i C_i`, and the
        diagonal of its coefficient part (m, d), :math:`\sum_i C_{i,kk} x_{ij}^2`."""
        proba = self._evaluate(theta).proba
        free = proba[1:] if self.reference else proba
        s = self.sample_weight
        if self.n_classes == 2:
            curvature = (s * proba[0] * proba[1])[None, None, :]
        else:
            curvature = np.einsum("kn,ln->kln", free, -free * s)
            curvature[np.arange(self.n_rows), np.arange(self.n_rows)] += s * free
        own = np.einsum("kkn->kn", curvature)
        return curvature.sum(axis=2), rows_times(self.X_squared, own)

    def curvature_root(self, theta: np.ndarray) -> np.ndarray:
        """Per-sample factors G of the curvature of :meth:`hessian`, shape (r, m, n)
        (:func:`curvature_factors` at the probabilities of ``theta``)."""
        proba = self._evaluate(theta).proba
        return curvature_factors(proba, self.sample_weight, self.reference)

    def hessian(self, theta: np.ndarray, rows: RowSubsample | None = None) -> np.ndarray:
        r"""Dense Hessian (n_params, n_params); block (k, l) is the Gram of [1, X] under c_kl.

        With ``rows``, the unbiased estimate from a random subset R of the
        samples, :math:`\tfrac{n}{|R|} \sum_{i \in R} c_{kl,i}\, a_i a_i^\top`
        (:math:`a_i = (1, x_i)`), at :math:`|R|/n` of the cost.

        In the symmetric model :math:`\sum_l c_{kl,i} = s_i p_{ik}(1 - \sum_l p_{il}) = 0`,
        so the blocks of one row of classes sum to zero: the row and column of
        one class j follow from the others, :math:`H_{kj} = -\sum_{l \ne j} H_{kl}`
        and :math:`H_{jj} = \sum_{k, l \ne j} H_{kl}`, which saves K of the
        K(K+1)/2 Gram matrices. j is the class of largest total probability,
        whose blocks are largest, so the sums lose the least to rounding.
        """
        proba = self._evaluate(theta).proba
        p = proba[1:] if self.reference else proba
        X, s = self.X, self.sample_weight
        if rows is not None:
            X, s, p = rows.X, rows.sample_weight, p[:, rows.index]
        m, d = self.n_rows, self.n_features
        curvature = self._buffers.curvature[: len(s)]
        if m == 1:
            # One row of classes: its Gram matrix is the whole Hessian, in parameter order.
            np.multiply(s, p[0], out=curvature)
            curvature *= 1.0 - p[0]
            return weighted_gram(X, curvature, intercept=True)
        derived = None if self.reference else int(np.argmax(p @ s))
        computed = [k for k in range(m) if k != derived]
        hessian = np.empty((self.n_params, self.n_params))
        blocks = HessianBlocks(hessian, m, d)
        for i, row in enumerate(computed):
            for col in computed[i:]:
                np.multiply(s, p[row], out=curvature)
                if row == col:
                    curvature *= 1.0 - p[row]
                    blocks[row, col] = weighted_gram(X, curvature, intercept=True)
                else:
                    # c_kl = -s p_k p_l <= 0: the Gram of its magnitude, negated.
                    curvature *= p[col]
                    block = weighted_gram(X, curvature, intercept=True)
                    np.negative(block, out=block)
                    blocks[row, col] = block
        if derived is not None:
            corner = np.zeros((d + 1, d + 1))
            for row in computed:
                block = -sum(blocks[row, col] for col in computed)
                blocks[row, derived] = block
                corner -= block
            # Symmetric up to the order of summation; make it exactly so.
            corner += corner.T
            corner *= 0.5
            blocks[derived, derived] = corner
        return hessian
