"""What every MAP solver shares: its result type and the constants of its step tests.

The Newton solvers (:mod:`problogreg.core.newton`, :mod:`problogreg.core.kernel_newton`)
use the same convergence test and line search; their constants live here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .woodbury import WoodburyHessian

#: The step test is max_j |delta_j| sqrt(H_jj / S) <= this times tol (module docstring).
STEP_TOLERANCE_FACTOR = 2.0

ARMIJO_SLOPE = 1e-4
MAX_BACKTRACKS = 40
#: Longest multiple of the Newton step a line search extends an accepted full step to.
LONGEST_STEP = 8.0
#: The rounding error of the objective f, in units of machine epsilon times |f|: below it
#: a decrease of f cannot be seen (the line search's and the rounding floor's level).
ROUNDING_ULPS = 16
#: Newton iterations in a row at the rounding floor without progress (the decrement
#: falling below FLOOR_MIN_PROGRESS times its smallest value so far) after which the
#: solver stops there (:class:`RoundingFloor`).
FLOOR_STALL_STEPS = 2
FLOOR_MIN_PROGRESS = 0.25


def objective_rounding(value: float) -> float:
    """The rounding error of an objective value, ``ROUNDING_ULPS`` ulps of it."""
    return ROUNDING_ULPS * np.finfo(float).eps * abs(value)


class RoundingFloor:
    r"""Whether Newton's method has reached the precision that rounding allows.

    Near the optimum the computed gradient is rounding noise of the sums it comes from,
    and so is the Newton step :math:`H^{-1}g`. Where the Hessian is ill-conditioned that
    noise can stay above the step test's :math:`2\,\mathrm{tol}` for as long as the
    solver runs (a trial of the empirical-Bayes search on iris at ``tol=1e-12``: scaled
    steps of 7e-12 to 4e-11, decrements near 1e-25, for a hundred iterations). The floor
    is reached when the decrement test has passed, the decrement is below the
    objective's rounding error (no step can be seen to decrease f), and it has failed to
    fall below :data:`FLOOR_MIN_PROGRESS` times its smallest value so far in
    :data:`FLOOR_STALL_STEPS` iterations in a row (at the floor it bounces, or creeps
    down by percents). Newton's method squares the decrement at every step until
    rounding stops it, so an iterate still converging never stalls; and where f keeps
    decreasing on its own scale (separable data under a flat prior, where f tends to 0)
    the decrement stays above f's rounding and the solver does not stop here.
    """

    def __init__(self):
        self.smallest = np.inf
        self.stalled = 0
        self.iteration = -1

    def reached(self, iteration: int, decrement: float, value: float) -> bool:
        """Record the decrement of ``iteration`` (once per iteration) and say whether the
        floor is reached; the caller has checked that the decrement test passed."""
        if iteration != self.iteration:
            self.iteration = iteration
            progress = decrement < FLOOR_MIN_PROGRESS * self.smallest
            self.stalled = 0 if progress else self.stalled + 1
            self.smallest = min(self.smallest, decrement)
        return decrement <= objective_rounding(value) and self.stalled >= FLOOR_STALL_STEPS


@dataclass
class SolverResult:
    """Outcome of a minimisation.

    Attributes
    ----------
    params : ndarray
        The minimiser :math:`\\hat\\phi`.
    hessian : ndarray or None
        Dense Hessian at :math:`\\hat\\phi` (None on the Hessian-free path).
    cholesky : ndarray or None
        Lower Cholesky factor of ``hessian``.
    woodbury : WoodburyHessian or None
        The Hessian at :math:`\\hat\\phi` in dual form, from :class:`DualNewtonSolver`
        (``hessian`` and ``cholesky`` are then None).
    n_iter : int
        Newton iterations (plus L-BFGS iterations when it ran).
    converged : bool
    deferred_hessian : bool
        The solver kept no exact form of the Hessian (Newton-CG steps, or steps in the
        span of the data); the estimators form one at ``params`` when it is needed.
    stop_reason : {"converged", "max_iter", "line_search"}
        Why the solver stopped: the tolerance was met, ``max_iter`` ran out,
        or no step along the Newton direction decreased the objective, even
        after the L-BFGS fallback.
    """

    params: np.ndarray
    hessian: np.ndarray | None
    cholesky: np.ndarray | None
    n_iter: int
    converged: bool
    stop_reason: str
    woodbury: WoodburyHessian | None = None
    deferred_hessian: bool = False
