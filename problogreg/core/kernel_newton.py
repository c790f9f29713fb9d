r"""Newton's method in the span of the data: binary MAP at d > n with steps in :math:`R^n`.

With a proper Gaussian prior (diagonal precision :math:`\Lambda`) on every coefficient,
the optimum satisfies :math:`\Lambda w = -X^\top q`, so :math:`w = \Lambda^{-1}X^\top a`
for some :math:`a \in R^n`; from :math:`w = 0` every Newton step stays in that span,
because the gradient at such a point is :math:`g_w = X^\top u`, :math:`u = q + a`.
The solver therefore carries the intercept b and :math:`a`, with the kernel
:math:`\mathcal K = X\Lambda^{-1}X^\top` formed once
(:class:`~problogreg.core.woodbury.DualSpace`):

.. math::

    \eta = b + \mathcal K a, \qquad w^\top \Lambda w = a^\top \mathcal K a, \qquad
    f = \sum_i s_i \ell(y_i, \eta_i) + \tfrac12 \lambda_b b^2 + \tfrac12 a^\top \mathcal K a,

with :math:`q_i = s_i(p_i - y_i)`, :math:`c_i = s_i p_i (1 - p_i)` and
:math:`g_b = \sum_i q_i + \lambda_b b`. The exact Newton step of the full Hessian,
:math:`(\delta b, \delta w = \Lambda^{-1}X^\top \delta a)`, solves

.. math::

    (\textstyle\sum_i c_i + \lambda_b)\,\delta b + c^\top \mathcal K \delta a = -g_b,
    \qquad (I + C\mathcal K)\,\delta a + c\,\delta b = -u,

and :math:`(I + C\mathcal K)^{-1} r = r - C^{1/2} M^{-1} C^{1/2} \mathcal K r` with
:math:`M = I + C^{1/2}\mathcal K C^{1/2} = LL^\top`, leaving a scalar Schur complement
for :math:`\delta b`. The steps are those of
:class:`~problogreg.core.newton.NewtonSolver` -- gradient and Hessian, convergence
check, inner solve, line search -- each :math:`O(n^2)` plus one :math:`O(n^3/3)`
factorisation, with no pass over X: the Newton decrement
:math:`\tfrac12 g^\top H^{-1} g = -\tfrac12(g_b\,\delta b + u^\top \mathcal K \delta a)` is
computed every step, and the per-parameter step test of the convergence check (which
needs :math:`\delta w` and :math:`H_{jj}`, two passes) only once the decrement has passed.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .numerics import log_sigmoid, rows_times
from .solver_result import ARMIJO_SLOPE, MAX_BACKTRACKS, STEP_TOLERANCE_FACTOR, SolverResult
from .woodbury import DualSpace


def kernel_newton_applies(objective, start: np.ndarray) -> bool:
    """Binary, every coefficient with a proper prior (the dual form applies), starting from
    zero (a warm start need not lie in the span of the data)."""
    return objective.likelihood.n_classes == 2 and not np.any(start)


class KernelNewtonSolver:
    """Newton's method on (b, a) (see the module docstring).

    Parameters
    ----------
    objective : PosteriorObjective
        Binary, with a proper prior on every coefficient.
    tol, max_iter : as for :class:`~problogreg.core.newton.NewtonSolver`.
    """

    def __init__(self, objective, tol: float, max_iter: int):
        likelihood = objective.likelihood
        self.objective = objective
        self.tol = tol
        self.max_iter = max_iter
        self.space = DualSpace.of(objective)
        self.kernel = self.space.kernel
        self.weight = likelihood.sample_weight
        self.positive = np.asarray(likelihood.y) == 1
        self.intercept_precision = float(objective.precision[0])
        self.scale = float(np.sum(self.weight))

    # 1. setup
    def setup(self) -> None:
        n = len(self.weight)
        self.intercept, self.dual = 0.0, np.zeros(n)
        self.kernel_dual = np.zeros(n)  # K a
        self.n_iter = 0
        self.evaluate()

    def loss_terms(self, eta: np.ndarray):
        """Loss, and log sigma(eta), log sigma(-eta) for the probabilities."""
        log_p1, log_p0 = log_sigmoid(eta), log_sigmoid(-eta)
        loss = -float(np.sum(self.weight * np.where(self.positive, log_p1, log_p0)))
        return loss, log_p1, log_p0

    def value_at(self, intercept: float, dual: np.ndarray, kernel_dual: np.ndarray) -> float:
        loss, _, _ = self.loss_terms(intercept + kernel_dual)
        return loss + 0.5 * (self.intercept_precision * intercept**2 + dual @ kernel_dual)

    # 2. gradient and Hessian
    def evaluate(self) -> None:
        eta = self.intercept + self.kernel_dual
        loss, log_p1, log_p0 = self.loss_terms(eta)
        self.value = loss + 0.5 * (
            self.intercept_precision * self.intercept**2 + self.dual @ self.kernel_dual
        )
        proba = np.exp(log_p1)
        self.residual = self.weight * (proba - self.positive)  # q
        self.curvature = self.weight * np.exp(log_p1 + log_p0)  # c
        self.gradient_intercept = float(np.sum(self.residual)) + self.intercept_precision * (
            self.intercept
        )
        self.gradient_dual = self.residual + self.dual  # u, g_w = X'u

    # 4. inner solve
    def newton_step(self) -> tuple[float, np.ndarray, np.ndarray]:
        """(delta_b, delta_a, K delta_a)."""
        root = np.sqrt(self.curvature)
        matrix = root[:, None] * self.kernel * root[None, :]
        matrix[np.diag_indices_from(matrix)] += 1.0
        factor = linalg.cho_factor(matrix, lower=True, check_finite=False)

        def solve_dual(r: np.ndarray) -> np.ndarray:
            """(I + C K)^{-1} r for a stack of columns r (n, q)."""
            inner = linalg.cho_solve(factor, root[:, None] * (self.kernel @ r), check_finite=False)
            return r - root[:, None] * inner

        both = solve_dual(np.column_stack([-self.gradient_dual, -self.curvature]))
        # delta_a = both[:, 0] + delta_b * both[:, 1]; the intercept row gives delta_b.
        kernel_curvature = self.kernel @ self.curvature
        schur = np.sum(self.curvature) + self.intercept_precision + kernel_curvature @ both[:, 1]
        delta_b = (-self.gradient_intercept - kernel_curvature @ both[:, 0]) / schur
        delta_a = both[:, 0] + delta_b * both[:, 1]
        return float(delta_b), delta_a, self.kernel @ delta_a

    # 3. convergence check
    def check_convergence(self, delta_b: float, delta_a: np.ndarray, slope: float) -> bool:
        if -0.5 * slope > self.tol * self.scale:
            return False
        space = self.space
        delta_w = rows_times(space.X, delta_a[None, :])[0] / space.coef_precision
        coef_diagonal = space.coef_precision + rows_times(space.X_squared, self.curvature[None])[0]
        intercept_diagonal = np.sum(self.curvature) + self.intercept_precision
        largest = max(
            abs(delta_b) * np.sqrt(intercept_diagonal / self.scale),
            float(np.max(np.abs(delta_w) * np.sqrt(coef_diagonal / self.scale))),
        )
        return largest <= STEP_TOLERANCE_FACTOR * self.tol

    # 5. line search
    def line_search(self, delta_b, delta_a, kernel_delta, slope: float) -> bool:
        step = 1.0
        for _ in range(MAX_BACKTRACKS):
            trial = (
                self.intercept + step * delta_b,
                self.dual + step * delta_a,
                self.kernel_dual + step * kernel_delta,
            )
            value = self.value_at(*trial)
            if np.isfinite(value) and value <= self.value + ARMIJO_SLOPE * step * slope:
                self.intercept, self.dual, self.kernel_dual = trial
                self.evaluate()
                return True
            step *= 0.5
        return False

    def solve(self) -> SolverResult:
        self.setup()
        stop_reason = "max_iter"
        while True:
            delta_b, delta_a, kernel_delta = self.newton_step()
            # g'delta = g_b delta_b + u'K delta_a: the Armijo slope, and -2 x the decrement.
            slope = self.gradient_intercept * delta_b + self.gradient_dual @ kernel_delta
            if self.check_convergence(delta_b, delta_a, slope):
                stop_reason = "converged"
                break
            if self.n_iter >= self.max_iter:
                break
            self.n_iter += 1
            if not self.line_search(delta_b, delta_a, kernel_delta, slope):
                stop_reason = "line_search"
                break
        return SolverResult(
            params=self.params(),
            hessian=None,
            cholesky=None,
            n_iter=self.n_iter,
            converged=stop_reason == "converged",
            stop_reason=stop_reason,
            deferred_hessian=True,
        )

    def params(self) -> np.ndarray:
        r""":math:`\phi = (b, \Lambda^{-1}X^\top a)`."""
        space = self.space
        coef = rows_times(space.X, self.dual[None, :])[0] / space.coef_precision
        return np.concatenate([[self.intercept], coef])
