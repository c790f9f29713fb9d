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
   step proves nothing.
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

With more coefficients than samples the same steps run on the Hessian in dual
(Woodbury) form, :class:`DualNewtonSolver` (:mod:`problogreg.core.woodbury`);
:func:`hessian_form` states the rule by which the form is chosen.

Two more solvers share the result type:

* ``"lbfgs"`` -- Hessian-free L-BFGS (scipy), used when the dense Hessian
  would exceed :data:`~problogreg.core.hessian_form.DENSE_HESSIAN_MAX_BYTES`.
  ``hessian`` is then None.
* ``"auto"`` -- Newton, except (a) the memory guard above, (b) multiclass
  problems, where one Hessian costs K(K-1)/2 weighted Gram matrices and a
  gradient costs two passes over X: L-BFGS brings the iterate near the
  optimum with cheap gradient steps and Newton finishes, so only two or
  three Hessians are formed (the last one is needed anyway, for standard
  errors and the Laplace posterior); and (c) binary problems with many
  samples per parameter, where the first Newton steps use the Hessian of a
  fixed random eighth R of the samples,
  :math:`\hat H = \tfrac{n}{|R|}\sum_{i \in R} c_i a_i a_i^\top` plus the prior
  precision. It is positive definite, so :math:`-\hat H^{-1} g` is a descent
  direction and the line search keeps every step safe; far from the optimum
  it moves almost as far as the exact step, at an eighth of the cost; near
  the optimum it converges linearly, at a rate set by the relative error of
  :math:`\hat H` (about :math:`\sqrt{p/|R|}`). Exact Newton takes over when one
  exact step will reach ``tol`` (decrement and max |gradient| below
  :math:`0.1\sqrt{\mathrm{tol}}\,S`), when a step stalls, or when
  :math:`\hat H` is singular. The convergence test and the returned Hessian
  always use all the samples, so the answer is the one exact Newton gives;
  only the path is cheaper (two full Hessians instead of about six at
  n=2e5, d=50).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from scipy import linalg, optimize
from scipy.sparse import linalg as sparse_linalg
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

from . import hessian_form as forms
from .kernel_newton import KernelNewtonSolver, kernel_newton_applies
from .solver_result import ARMIJO_SLOPE, MAX_BACKTRACKS, STEP_TOLERANCE_FACTOR, SolverResult

#: BLAS threads while solving. Measured on the 2-core development machine (OpenBLAS):
#: a second thread made the weighted Gram (dsyrk) no faster at n=1e6, d=100 and the
#: whole binary fit at n=2e5, d=50 twice as slow, through many mid-sized BLAS calls.
SOLVER_BLAS_THREADS = 1
_BLAS = ThreadpoolController()

#: Newton-CG (:meth:`HessianFreeNewtonSolver.forcing_term`): conjugate gradients stop at
#: a relative residual of at most CG_RELATIVE_RESIDUAL, never below CG_TEST_MARGIN times
#: what the convergence test resolves, or after CG_MAX_ITER products; X is read in single
#: precision while the residual sought is at least SINGLE_PRECISION_MIN_RESIDUAL.
CG_RELATIVE_RESIDUAL = 0.5
CG_TEST_MARGIN = 0.1
CG_MAX_ITER = 500
SINGLE_PRECISION_MIN_RESIDUAL = 1e-4

#: A Cholesky pivot this small relative to its diagonal entry marks a flat direction.
SINGULAR_PIVOT_RATIO = 1e-12
#: L-BFGS warm start stops at this multiple of the final gradient tolerance.
WARM_START_LOOSENESS = 1e4
#: Subsampled Hessians (``solver="auto"``, two classes): the subset's share of
#: the samples, and the fewest subset rows per parameter for which it is used.
SUBSAMPLE_FRACTION = 1 / 8
SUBSAMPLE_MIN_ROWS_PER_PARAM = 64
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
        (see the module docstring); the last ones, and the returned Hessian, are exact.
    """

    #: The Hessian as the result reports it: dense with its factor, or in dual form (the
    #: subclasses); Newton-CG keeps neither.
    hessian = cholesky = woodbury = None

    def __init__(self, objective, tol: float, max_iter: int, subsample=None):
        self.objective = objective
        self.tol = tol
        self.max_iter = max_iter
        self.subsample = subsample
        self.scale = tolerance_unit(objective)

    # 1. setup
    def setup(self, start: np.ndarray) -> None:
        self.params = np.array(start, dtype=np.float64)
        self.value, self.gradient = self.objective.value_gradient(self.params)
        self.n_iter = 0
        self.last_decrement = np.inf
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
        if self.largest_scaled_step() > STEP_TOLERANCE_FACTOR * self.tol:
            return False
        return self.newton_decrement() <= self.tol * self.scale

    def subsample_exit_level(self) -> float:
        return SUBSAMPLE_EXIT * np.sqrt(self.tol)

    def subsample_phase_over(self) -> bool:
        """After a subsampled step: will one exact step finish, or has progress stalled?

        The decrement is measured at the new gradient with the subsample's Hessian
        of the step just taken, so deciding forms no Hessian.
        """
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
        rounding = 16 * np.finfo(float).eps * abs(self.value)
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


class DualNewtonSolver(NewtonSolver):
    """:class:`NewtonSolver` with the Hessian in dual (Woodbury) form (d > n).

    The same steps, line search and convergence test; only :math:`H^{-1}g` and
    :math:`H_{jj}` come from :class:`~problogreg.core.woodbury.WoodburyHessian`,
    at the cost of an rn x rn Cholesky factorisation per step instead of an
    m(d+1) one (see :func:`~problogreg.core.hessian_form.hessian_form`).
    """

    def __init__(self, objective, tol: float, max_iter: int, subsample=None):
        super().__init__(objective, tol, max_iter, subsample=None)
        self.space = objective.dual_space

    def update_hessian(self) -> None:
        self.rows = None
        try:
            self.woodbury = self.space.curvature(self.params)
            self.solved_gradient = None
        except linalg.LinAlgError:
            # Every coefficient has a proper prior: only the intercepts can be flat.
            involved = np.arange(self.space.n_intercepts)
            direction = np.zeros(self.objective.n_params)
            direction[involved] = 1.0
            raise SingularHessianError(involved, direction) from None

    def solve_hessian(self, vector: np.ndarray) -> np.ndarray:
        return self.woodbury.solve(vector)

    def hessian_diagonal(self) -> np.ndarray:
        return self.woodbury.diagonal()


class HessianFreeNewtonSolver(NewtonSolver):
    r""":class:`NewtonSolver` whose steps :math:`H^{-1}g` come from preconditioned conjugate
    gradients on Hessian-vector products (Newton-CG), for problems where no exact form
    of the Hessian is affordable (see :func:`~problogreg.core.hessian_form.hessian_form`).

    The same line search and the same convergence test: :math:`H_{jj}` is exact (the
    objective's ``hessian_diagonal``, also the preconditioner). The step is solved to
    the relative residual :meth:`forcing_term` (inexact Newton): loose far from the
    optimum, where a more exact step would not go further, tightening as
    :math:`\sqrt{\hat g}` so that convergence is superlinear, and never tighter than
    the convergence test can see. While that residual is at least
    :data:`SINGLE_PRECISION_MIN_RESIDUAL` the products read X in single precision,
    whose error (~1e-7) is far below it.
    """

    def __init__(self, objective, tol: float, max_iter: int, subsample=None):
        super().__init__(objective, tol, max_iter, subsample=None)
        self.single_products = getattr(objective.likelihood, "X_single", None) is not None

    def update_hessian(self) -> None:
        self.rows = None
        self.diagonal = self.objective.hessian_diagonal(self.params)
        self.solved_gradient = None

    def hessian_diagonal(self) -> np.ndarray:
        return self.diagonal

    def solve_hessian(self, vector: np.ndarray) -> np.ndarray:
        params, n = self.params, len(vector)
        residual = self.forcing_term()
        single = self.single_products and residual >= SINGLE_PRECISION_MIN_RESIDUAL

        def product(v):
            return self.objective.hessian_product(params, v[None, :], single=single)[0]

        solution, _ = sparse_linalg.cg(
            sparse_linalg.LinearOperator((n, n), matvec=product),
            vector,
            rtol=residual,
            atol=0.0,
            maxiter=CG_MAX_ITER,
            M=sparse_linalg.LinearOperator((n, n), matvec=lambda v: v / self.diagonal),
        )
        return solution

    def result(self, stop_reason: str) -> SolverResult:
        return dataclasses.replace(super().result(stop_reason), deferred_hessian=True)

    def forcing_term(self) -> float:
        r"""Relative residual for the conjugate gradients,
        :math:`\eta = \min(\eta_{\max}, \max(\sqrt{\hat g}, c\,\mathrm{tol}/\hat g))`
        with :math:`\hat g = \max_j |g_j| / \sqrt{S H_{jj}}`, the largest Newton step in
        the units of the convergence test as the diagonal of H predicts it,
        :math:`\eta_{\max}` = :data:`CG_RELATIVE_RESIDUAL` and c = :data:`CG_TEST_MARGIN`:
        a step solved more exactly than :math:`c\,\mathrm{tol}/\hat g` would change the
        test's verdict by less than c times its tolerance."""
        scaled = float(np.max(np.abs(self.gradient) / np.sqrt(self.scale * self.diagonal)))
        superlinear = np.sqrt(scaled)
        enough = CG_TEST_MARGIN * self.tol / max(scaled, np.finfo(float).tiny)
        return min(CG_RELATIVE_RESIDUAL, max(superlinear, enough))


def tolerance_unit(objective) -> float:
    r""":math:`S = \sum_i s_i`, the unit in which ``tol`` is measured."""
    return objective.likelihood.total_weight


def lbfgs(objective, start, tol: float, max_iter: int):
    """Minimise with scipy's L-BFGS-B on value and gradient only."""
    result = optimize.minimize(
        objective.value_gradient,
        start,
        jac=True,
        method="L-BFGS-B",
        options={
            "maxiter": max_iter,
            "gtol": tol * tolerance_unit(objective),
            "ftol": 0.0,
            "maxcor": 20,
        },
    )
    return result


def minimize(
    objective,
    start: np.ndarray,
    *,
    solver: str = "auto",
    tol: float = 1e-8,
    max_iter: int = 100,
) -> SolverResult:
    """Minimise ``objective`` from ``start`` with the chosen solver.

    Parameters
    ----------
    objective : PosteriorObjective
    start : ndarray
    solver : {"auto", "newton", "lbfgs"}
    tol, max_iter : see :class:`NewtonSolver`.

    Returns
    -------
    SolverResult
        ``converged`` is False when ``max_iter`` ran out; the caller warns.

    Notes
    -----
    BLAS runs on :data:`SOLVER_BLAS_THREADS` threads during the solve (restored
    afterwards).
    """
    with _BLAS.limit(limits=SOLVER_BLAS_THREADS, user_api="blas"):
        return _minimize(objective, start, solver, tol, max_iter)


def _minimize(objective, start, solver, tol, max_iter) -> SolverResult:
    n_params = objective.n_params
    form = forms.hessian_form(objective)
    if solver == "newton" and form in ("free", "none"):
        # Exact Newton was asked for: Newton-CG only approximates its steps.
        form = forms.exact_hessian_form(objective) or "none"
    if solver == "newton" and form == "none":
        raise MemoryError(
            f"The dense Hessian over {n_params} parameters needs "
            f"{8 * n_params**2 / 1024**3:.1f} GiB (limit "
            f"{forms.DENSE_HESSIAN_MAX_BYTES / 1024**3:.0f} GiB). Use solver='lbfgs' or 'auto'."
        )
    if solver == "lbfgs" or (solver == "auto" and form == "none"):
        result = lbfgs(objective, start, tol, max_iter)
        converged = bool(np.max(np.abs(result.jac)) <= tol * tolerance_unit(objective))
        return SolverResult(
            params=result.x,
            hessian=None,
            cholesky=None,
            n_iter=int(result.nit),
            converged=converged,
            stop_reason="converged" if converged else "max_iter",
        )
    newton = {"dual": DualNewtonSolver, "free": HessianFreeNewtonSolver}.get(form, NewtonSolver)
    n_iter = 0
    if form == "dual" and kernel_newton_applies(start):
        result = KernelNewtonSolver(objective, tol, max_iter).solve()
    else:
        subsample = None
        # A dual Newton step costs about as much as a few L-BFGS iterations: no warm start.
        if solver == "auto" and form != "dual" and objective.likelihood.n_rows > 1:
            warm = lbfgs(objective, start, tol * WARM_START_LOOSENESS, max_iter)
            start, n_iter = warm.x, int(warm.nit)
        elif solver == "auto" and form == "dense":
            subsample = hessian_subsample(objective.likelihood, n_params)
        result = newton(objective, tol, max_iter, subsample).solve(start)
    result.n_iter += n_iter
    if result.stop_reason != "line_search":
        return result
    # Rounding defeats the Newton direction (e.g. features on wildly different
    # scales): L-BFGS needs only gradients. Newton then checks (and, if it can,
    # finishes) from where L-BFGS stopped, and forms the Hessian there.
    rescue = lbfgs(objective, result.params, tol, max(1, max_iter - result.n_iter))
    n_iter = result.n_iter + int(rescue.nit)
    result = newton(objective, tol, max(0, max_iter - n_iter)).solve(rescue.x)
    result.n_iter += n_iter
    return result


def hessian_subsample(likelihood, n_params: int):
    """The rows for subsampled Hessians, or None when too few samples to spare."""
    n = likelihood.n_samples
    n_rows = int(SUBSAMPLE_FRACTION * n)
    if n_rows < SUBSAMPLE_MIN_ROWS_PER_PARAM * n_params:
        return None
    # A fixed seed: the same data always takes the same path (and gives the same fit).
    index = np.random.default_rng(0).choice(n, size=n_rows, replace=False)
    return likelihood.row_subsample(np.sort(index))


def warn_not_converged(result: SolverResult, tol: float) -> None:
    """A ConvergenceWarning that names why the solver stopped short of ``tol``."""
    if result.stop_reason == "line_search":
        cause = (
            "no step along the Newton direction decreased the objective, and L-BFGS "
            "continued from there without reaching it either: the objective is dominated "
            "by rounding there, typically because features differ in scale by many orders "
            "of magnitude or a direction is nearly flat (collinear columns, a flat prior "
            "on nearly separable data). Rescale the features (e.g. StandardScaler) or use "
            "a more informative prior (a smaller prior_scale)"
        )
    else:
        cause = (
            "max_iter ran out. Increase max_iter; if that does not help, standardise the "
            "features or use a more informative prior (a smaller prior_scale) -- flat "
            "priors on nearly separable data also cause this"
        )
    warnings.warn(
        f"The MAP solver stopped after {result.n_iter} iterations without reaching "
        f"tol={tol:g}: {cause}.",
        ConvergenceWarning,
        stacklevel=3,
    )
