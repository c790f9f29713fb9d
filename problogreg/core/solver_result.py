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
