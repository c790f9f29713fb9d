r"""Detect (quasi-)complete separation, where the maximum-likelihood estimate is infinite.

The likelihood of a (multinomial) logistic model keeps increasing along a
direction :math:`\delta` of the flat-prior parameters when every observation's
own-class logit gains on every other class's logit,

.. math::

    m_{ik}(\delta) = \delta z_{i y_i} - \delta z_{ik} \ge 0
    \quad \text{for all } i,\ k \ne y_i,

with at least one strict inequality (Albert & Anderson, 1984). Such a direction
exists iff the linear programme

.. math::

    \max_{\delta}\ \sum_{i,k} m_{ik}(\delta)
    \quad \text{s.t.}\ m_{ik}(\delta) \ge 0,\ -1 \le \delta \le 1

has a positive optimum (Konis, 2007). The solution also tells which pairs of
classes are split and which parameters do the splitting.

Whether a separating direction exists does not depend on the units of the
features, and neither does the answer here: the programme is solved in
standardised coordinates, each column of X centred (when the intercepts are
flat, so that the shift is a reparametrisation) and divided by its sd over the
samples with positive weight. Rescaling or shifting a column gives the same
margins, the same verdict and the same separating features, and the
tolerances, relative to margins of order one, mean the same for every data set.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

#: Above this many constraint-matrix entries the LP is skipped (see ``find_separation``).
MAX_LP_ENTRIES = 2 * 10**7


@dataclass(frozen=True)
class Separation:
    """A separating direction.

    Attributes
    ----------
    class_pairs : list of (int, int)
        Class codes (a, b): samples of class a lie strictly on a's side against b.
    parameters : ndarray of int
        Free (flat-prior) parameter indices that carry the direction.
    n_strict : int
        Observations with at least one strict margin (their fitted probability
        of the observed class tends to 1 along the direction); a lower bound
        for quasi-complete separation.
    complete : bool
        True when one direction makes every margin strict (complete separation).
    """

    class_pairs: list
    parameters: np.ndarray
    n_strict: int
    complete: bool


def standardisation(X: np.ndarray, centre: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shift and scale of each column: its mean (0 unless ``centre``) and sd (1 if constant).

    ``(X - shift) / scale`` is an invertible linear map of the flat parameters (a
    shift only when the intercepts are flat), so separation in these coordinates
    is separation in the original ones.
    """
    sd = X.std(axis=0)
    return (X.mean(axis=0) if centre else np.zeros(X.shape[1])), np.where(sd > 0, sd, 1.0)


def _margin_matrix(likelihood, flat: np.ndarray, shift: np.ndarray, scale: np.ndarray):
    """Rows m_ik as linear functions of the flat parameters in standardised coordinates,
    with (y_i, k, i) per row."""
    X, y, n_classes = likelihood.X, likelihood.y, likelihood.n_classes
    d = X.shape[1]
    keep = likelihood.sample_weight > 0
    m = likelihood.n_rows
    X = (X[keep] - shift) / scale
    y = y[keep]
    n = len(y)
    offset = 1 if likelihood.reference else 0

    def logit_jacobian(codes: np.ndarray) -> np.ndarray:
        """d z_{i, codes_i} / d theta for every sample, shape (n, n_params)."""
        jac = np.zeros((n, likelihood.n_params))
        rows = codes - offset
        for row in range(m):
            sel = rows == row
            jac[sel, row] = 1.0
            jac[sel, m + row * d : m + (row + 1) * d] = X[sel]
        return jac

    own = logit_jacobian(y)
    blocks, pairs = [], []
    for k in range(n_classes):
        sel = y != k
        other = logit_jacobian(np.full(n, k))
        blocks.append((own - other)[sel][:, flat])
        pairs.append(np.column_stack([y[sel], np.full(sel.sum(), k), np.flatnonzero(sel)]))
    return np.vstack(blocks), np.vstack(pairs)


def separation_check_fits(likelihood, flat: np.ndarray) -> bool:
    """Whether the LP's constraint matrix stays within :data:`MAX_LP_ENTRIES` (and,
    for a sparse X, which the LP needs dense, X too)."""
    n_rows = len(likelihood.y) * (likelihood.n_classes - 1)
    dense_X = not sparse.issparse(likelihood.X) or np.prod(likelihood.X.shape) <= MAX_LP_ENTRIES
    return n_rows * len(flat) <= MAX_LP_ENTRIES and dense_X


def find_separation(likelihood, flat: np.ndarray) -> Separation | None:
    """Return the separation along the flat-prior parameters ``flat``, or None.

    Parameters
    ----------
    likelihood : SoftmaxLikelihood
    flat : ndarray of int
        Likelihood-parameter indices whose prior is flat (only these can diverge).

    Returns None also when the problem is too large for the LP
    (:data:`MAX_LP_ENTRIES`); callers then rely on the fit's own symptoms.
    The margins are those of standardised features (see the module docstring),
    so the verdict and the parameters named do not depend on their units.
    """
    if len(flat) == 0 or not separation_check_fits(likelihood, flat):
        return None
    if sparse.issparse(likelihood.X):
        # Within MAX_LP_ENTRIES (separation_check_fits): no larger than the LP itself.
        likelihood = copy.copy(likelihood)
        likelihood.X = likelihood.X.toarray()
    m = likelihood.n_rows
    shift, scale = standardisation(
        likelihood.X[likelihood.sample_weight > 0],
        centre=bool(np.isin(np.arange(m), flat).all()),
    )
    margins, pairs = _margin_matrix(likelihood, flat, shift, scale)
    result = linprog(
        -margins.sum(axis=0),
        A_ub=-margins,
        b_ub=np.zeros(len(margins)),
        bounds=(-1, 1),
        method="highs",
    )
    if result.status != 0 or -result.fun <= 1e-7 * max(1.0, np.abs(margins).max()):
        return None
    direction = result.x
    complete_direction = _complete_direction(margins)
    if complete_direction is not None:
        direction = complete_direction
    # A column that moves no margin (a constant feature, once centred) is not involved.
    direction = np.where(np.any(margins != 0, axis=0), direction, 0.0)
    margin = margins @ direction
    strict = margin > 1e-7 * np.abs(margins).max()
    class_pairs = sorted({(int(a), int(b)) for a, b, _ in pairs[strict]})
    involved = _involved(likelihood, flat, direction, shift, scale, np.abs(margin).max())
    n_strict = len(np.unique(pairs[strict, 2]))
    return Separation(
        class_pairs=class_pairs,
        parameters=involved,
        n_strict=n_strict,
        complete=complete_direction is not None,
    )


def _complete_direction(margins: np.ndarray) -> np.ndarray | None:
    """A direction making every margin positive (max t s.t. M delta >= t), or None."""
    n_rows, n_vars = margins.shape
    objective = np.zeros(n_vars + 1)
    objective[-1] = -1.0
    result = linprog(
        objective,
        A_ub=np.hstack([-margins, np.ones((n_rows, 1))]),
        b_ub=np.zeros(n_rows),
        bounds=[(-1, 1)] * n_vars + [(None, 1)],
        method="highs",
    )
    if result.status == 0 and -result.fun > 1e-7 * max(1.0, np.abs(margins).max()):
        return result.x[:-1]
    return None


def _involved(likelihood, flat, direction, shift, scale, largest_margin) -> np.ndarray:
    """The flat parameters that carry a separating ``direction`` (standardised coordinates).

    A coefficient is involved when its standardised component is non-zero (a
    judgement free of units). An intercept is involved when its component in the
    original coordinates, :math:`\tilde\\delta_b - \\sum_j \tilde\\delta_j c_j / s_j`,
    moves the margins: whether it does depends on where zero lies on each feature.
    """
    m, d = likelihood.n_rows, likelihood.n_features
    keep = np.abs(direction) > 1e-7
    for position, parameter in enumerate(flat):
        if parameter >= m:
            continue
        row = (flat >= m + parameter * d) & (flat < m + (parameter + 1) * d)
        features = flat[row] - m - parameter * d
        original = direction[position] - np.sum(direction[row] * shift[features] / scale[features])
        keep[position] = abs(original) > 1e-7 * largest_margin
    return flat[keep]
