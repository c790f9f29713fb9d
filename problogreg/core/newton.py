r"""Newton's method for the penalised negative log-posterior (the MAP solver).

Minimises a smooth convex :math:`f(\phi)` (see :mod:`problogreg.core.objective`) in
named steps, after scikit-learn's ``_glm/_newton_solver.py``:

1. **setup** -- start at :math:`\phi_0` (zeros, or a warm start).
2. **gradient and Hessian** -- :math:`g = \nabla f(\phi)`, :math:`H = \nabla^2 f(\phi)`.
3. **convergence check** -- stop when the Newton step :math:`\delta = H^{-1}g`,
   the remaining error, is small in every parameter's own units,
   :math:`\max_j |\delta_j| \sqrt{H_{jj}/S} \le 2\,\mathrm{tol}`, *and* the Newton
   decrement :math:`\tfrac12 g^\top H^{-1} g \le \mathrm{tol}\cdot S`, with
   :math:`S = \sum_i s_i` (:func:`tolerance_unit`). Both are unchanged when a
   column of X is rescaled (the decrement is invariant to any linear
   reparametrisation), and they do not depend on the scale of the weights, so
   features in any units converge alike. (For standardised features with
   probabilities near ½, :math:`H_{jj} \approx S/4` and the first test is
   :math:`|g_j| \le \mathrm{tol}\cdot S`, the gradient test it replaces, which
   depended on the units.) The length of the step taken is never used: a tiny
   step proves nothing. Where rounding keeps the step test from passing (an
   ill-conditioned Hessian at a tight ``tol``), the solver stops at the rounding
   floor instead (:class:`~problogreg.core.solver_result.RoundingFloor`).
4. **inner solve** -- Newton direction :math:`\delta = -H^{-1} g` from the
   Cholesky factor :math:`H = LL^\top`. A failed factorisation, or a pivot
   at rounding level, means the objective is flat along some direction
   (constant or collinear columns with a flat prior):
   :class:`SingularHessianError` names the parameters involved.
5. **line search** -- Armijo backtracking, :math:`f(\phi + t\delta) \le f(\phi)
   + c\,t\,g^\top\delta` with :math:`c = 10^{-4}`, halving :math:`t`. Near the
   optimum, where rounding hides decrease in :math:`f`, a step that keeps
   :math:`f` equal to rounding and shrinks :math:`\lVert g\rVert_1` is accepted.
   Trial steps cost one evaluation of :math:`f`; the gradient, and then the
   Hessian of step 2, reuse the likelihood's cached probabilities at the
   accepted point. When no trial step decreases :math:`f` (rounding defeats the
   Newton direction, e.g. features on wildly different scales), L-BFGS, which
   needs only gradients, continues from there, and Newton resumes (or only
   checks convergence and forms the Hessian) where L-BFGS stopped, as
   scikit-learn's Newton solver falls back to L-BFGS.


The forms of the Hessian other than dense, and the choice among the solvers, live
beside it: :mod:`problogreg.core.newton_variants` (dual form, Newton-CG),
:mod:`problogreg.core.kernel_newton` (steps in the span of the data) and
:mod:`problogreg.core.minimize` (which solver runs, and from where).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .solver_result import (
    ARMIJO_SLOPE,
    MAX_BACKTRACKS,
    STEP_TOLERANCE_FACTOR,
    RoundingFloor,
    SolverResult,
    objective_rounding,
)

#: A Cholesky pivot this small relative to its diagonal entry marks a flat direction.
SINGULAR_PIVOT_RATIO = 1e-12
#: Exact Newton takes over when the decrement (in units of S) and the scaled step fall
#: to this times sqrt(tol) (from there one exact step reaches tol: Newton squares
#: both), or when a subsampled step shrinks the decrement by less than
#: SUBSAMPLE_MIN_PROGRESS.
SUBSAMPLE_EXIT = 0.1
SUBSAMPLE_MIN_PROGRESS = 0.25


class SingularHessianError(np.linalg.LinAlgError):
    """The objective is flat along ``direction``; ``involved`` are the free parameters in it."""

    def __init__(self, involved: np.ndarray, direction: np.ndarray):
        self.involved = involved
        self.direction = direction
        super().__init__(f"Hessian is singular along parameters {list(involved)}.")


def cholesky_or_explain(hessian: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor, or :class:`SingularHessianError` naming the flat direction.

    Singular to working precision counts as singular: a pivot :math:`L_{jj}^2`
    below :data:`SINGULAR_PIVOT_RATIO` times :math:`H_{jj}` means coordinate j
    is, up to rounding, a combination of the earlier ones (exactly collinear
    columns leave pivots of the order of rounding error, whose sign is luck).
    """
    try:
        factor = linalg.cholesky(hessian, lower=True, check_finite=False)
    except linalg.LinAlgError:
        factor = None
    if factor is None or np.any(np.diag(factor) ** 2 <= SINGULAR_PIVOT_RATIO * np.diag(hessian)):
        _, eigenvectors = linalg.eigh(hessian)
        direction = eigenvectors[:, 0]
        involved = np.flatnonzero(np.abs(direction) > 0.1 * np.abs(direction).max())
        raise SingularHessianError(involved, direction)
    return factor


class NewtonSolver:
    """Damped Newton with Cholesky steps and Armijo backtracking.

    Parameters
    ----------
    objective : PosteriorObjective
        Provides ``value``, ``value_gradient`` and ``hessian``.
    tol : float
        Relative tolerance (see the module docstring).
    max_iter : int
    subsample : RowSubsample or None
        When given, the first steps use the Hessian estimated from these rows
        (see :mod:`problogreg.core.minimize`); the last ones, and the returned Hessian, are exact.
    subsample_steps : int or None
        This many steps on the subsample's Hessian (None: until the test of
        :meth:`subsample_phase_over` says exact Newton should take over).
    """

    #: The Hessian as the result reports it: dense with its factor, or in dual form (the
    #: subclasses); Newton-CG keeps neither.
    hessian = cholesky = woodbury = None

    def __init__(self, objective, tol: float, max_iter: int, subsample=None, subsample_steps=None):
        self.objective = objective
        self.tol = tol
        self.max_iter = max_iter
        self.subsample = subsample
        self.subsample_steps = subsample_steps
        self.scale = tolerance_unit(objective)

    # 1. setup
    def setup(self, start: np.ndarray) -> None:
        self.params = np.array(start, dtype=np.float64)
        self.value, self.gradient = self.objective.value_gradient(self.params)
        self.n_iter = 0
        self.last_decrement = np.inf
        self.rounding_floor = RoundingFloor()
        near = np.max(np.abs(self.gradient)) <= self.subsample_exit_level() * self.scale
        self.rows = None if near else self.subsample

    # 2. gradient and Hessian (the gradient is carried over from the line search)
    def update_hessian(self) -> None:
        self.hessian = self.objective.hessian(self.params, self.rows)
        self.cholesky = cholesky_or_explain(self.hessian)
        self.solved_gradient = None

    def solve_hessian(self, vector: np.ndarray) -> np.ndarray:
        """:math:`H^{-1} v` from the Cholesky factor."""
        return linalg.cho_solve((self.cholesky, True), vector, check_finite=False)

    def hessian_diagonal(self) -> np.ndarray:
        return np.diag(self.hessian)

    def gradient_solve(self) -> np.ndarray:
        """:math:`H^{-1} g` at the current gradient and Hessian, solved once for the
        convergence test, the decrement and the direction."""
        if self.solved_gradient is None:
            self.solved_gradient = self.solve_hessian(self.gradient)
        return self.solved_gradient

    def newton_decrement(self) -> float:
        r""":math:`\tfrac12 g^\top H^{-1} g`, the predicted decrease of a full Newton step."""
        return 0.5 * float(self.gradient @ self.gradient_solve())

    # 3. convergence check
    def largest_scaled_step(self) -> float:
        r""":math:`\max_j |\delta_j| \sqrt{H_{jj}/S}` for the Newton step
        :math:`\delta = H^{-1} g`: the remaining error of each parameter in units of
        its curvature per unit weight, unchanged when a column of X is rescaled."""
        step = self.gradient_solve()
        return float(np.max(np.abs(step) * np.sqrt(self.hessian_diagonal() / self.scale)))

    def check_convergence(self) -> bool:
        decrement = self.newton_decrement()
        if decrement > self.tol * self.scale:
            return False
        if self.largest_scaled_step() <= STEP_TOLERANCE_FACTOR * self.tol:
            return True
        return self.rounding_floor.reached(self.n_iter, decrement, self.value)

    def subsample_exit_level(self) -> float:
        return SUBSAMPLE_EXIT * np.sqrt(self.tol)

    def subsample_phase_over(self) -> bool:
        """After a subsampled step: will one exact step finish, or has progress stalled?

        The decrement is measured at the new gradient with the subsample's Hessian
        of the step just taken, so deciding forms no Hessian. With ``subsample_steps``
        given, over after that many steps instead.
        """
        if self.subsample_steps is not None:
            return self.n_iter >= self.subsample_steps
        decrement = self.newton_decrement()
        stalled = decrement > SUBSAMPLE_MIN_PROGRESS * self.last_decrement
        self.last_decrement = decrement
        level = self.subsample_exit_level()
        return stalled or (
            decrement <= level * self.scale
            and self.largest_scaled_step() <= STEP_TOLERANCE_FACTOR * level
        )

    # 4. inner solve
    def newton_direction(self) -> np.ndarray:
        return -self.gradient_solve()

    # 5. line search
    def line_search(self, direction: np.ndarray) -> bool:
        """Backtrack from the full step; the gradient is computed for the accepted point only."""
        slope = float(self.gradient @ direction)
        gradient_l1 = np.sum(np.abs(self.gradient))
        rounding = objective_rounding(self.value)
        step = 1.0
        for _ in range(MAX_BACKTRACKS):
            trial = self.params + step * direction
            value = self.objective.value(trial)
            if np.isfinite(value):
                if value <= self.value + ARMIJO_SLOPE * step * slope:
                    self.accept(trial)
                    return True
                if abs(value - self.value) <= rounding:
                    _, gradient = self.objective.value_gradient(trial)
                    if np.sum(np.abs(gradient)) < gradient_l1:
                        self.accept(trial)
                        return True
            step *= 0.5
        return False

    def accept(self, params: np.ndarray) -> None:
        # The likelihood caches its last evaluation: this reuses the trial's softmax.
        self.params = params
        self.value, self.gradient = self.objective.value_gradient(params)
        self.solved_gradient = None

    def solve(self, start: np.ndarray) -> SolverResult:
        self.setup(start)
        stop_reason = "max_iter"
        while True:
            try:
                self.update_hessian()
            except SingularHessianError:
                if self.rows is None:
                    raise
                # The subset can miss what identifies a direction; all rows may not.
                self.rows = None
                continue
            if self.rows is None and self.check_convergence():
                stop_reason = "converged"
                break
            if self.n_iter >= self.max_iter:
                break
            self.n_iter += 1
            if not self.line_search(self.newton_direction()):
                if self.rows is None:
                    stop_reason = "line_search"
                    break
                self.rows = None
            elif self.rows is not None and self.subsample_phase_over():
                self.rows = None
        if self.rows is not None:
            # max_iter ran out on a subsample's Hessian: return the exact one.
            self.rows = None
            self.update_hessian()
        return self.result(stop_reason)

    def result(self, stop_reason: str) -> SolverResult:
        return SolverResult(
            params=self.params,
            hessian=self.hessian,
            cholesky=self.cholesky,
            n_iter=self.n_iter,
            converged=stop_reason == "converged",
            stop_reason=stop_reason,
            woodbury=self.woodbury,
        )


def tolerance_unit(objective) -> float:
    r""":math:`S = \sum_i s_i`, the unit in which ``tol`` is measured."""
    return objective.likelihood.total_weight
