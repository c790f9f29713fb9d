r"""Which MAP solver runs, and from where: :func:`minimize`.

Newton's method (:mod:`problogreg.core.newton`) in the form of the Hessian that
:func:`~problogreg.core.hessian_form.hessian_form` picks: dense; dual, by
:mod:`problogreg.core.kernel_newton` from zero and by
:class:`~problogreg.core.newton_variants.DualNewtonSolver` from a warm start; or
Newton-CG, :class:`~problogreg.core.newton_variants.HessianFreeNewtonSolver`.

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

import warnings

import numpy as np
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

from . import hessian_form as forms
from .kernel_newton import KernelNewtonSolver, kernel_newton_applies
from .newton import NewtonSolver, tolerance_unit
from .newton_variants import DualNewtonSolver, HessianFreeNewtonSolver
from .solver_result import SolverResult

#: BLAS threads while solving. Measured on the 2-core development machine (OpenBLAS):
#: a second thread made the weighted Gram (dsyrk) no faster at n=1e6, d=100 and the
#: whole binary fit at n=2e5, d=50 twice as slow, through many mid-sized BLAS calls.
SOLVER_BLAS_THREADS = 1
_BLAS = ThreadpoolController()

#: L-BFGS warm start stops at this multiple of the final gradient tolerance.
WARM_START_LOOSENESS = 1e4
#: Subsampled Hessians (``solver="auto"``, two classes): the subset's share of
#: the samples, and the fewest subset rows per parameter for which it is used.
SUBSAMPLE_FRACTION = 1 / 8
SUBSAMPLE_MIN_ROWS_PER_PARAM = 64


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
    subsample=None,
    subsample_steps: int | None = None,
) -> SolverResult:
    """Minimise ``objective`` from ``start`` with the chosen solver.

    Parameters
    ----------
    objective : PosteriorObjective
    start : ndarray
    solver : {"auto", "newton", "lbfgs"}
    tol, max_iter : see :class:`NewtonSolver`.
    subsample, subsample_steps : rows or None, int or None
        Rows whose Hessian (the ``rows`` of the likelihood's ``hessian``) the first
        ``subsample_steps`` steps of exact Newton use (see :class:`NewtonSolver`): for
        data in Dask blocks, the sample whose mode is ``start``
        (:meth:`~problogreg.core.blocked.BlockedLikelihood.hessian_sample`). By default,
        ``"auto"`` chooses them for in-memory binary data, as above.

    Returns
    -------
    SolverResult
        ``converged`` is False when ``max_iter`` ran out; the caller warns.

    Notes
    -----
    BLAS runs on :data:`SOLVER_BLAS_THREADS` threads during the solve (restored
    afterwards).
    """
    with solver_blas_threads():
        return _minimize(objective, start, solver, tol, max_iter, subsample, subsample_steps)


def solver_blas_threads():
    """Context in which BLAS runs on :data:`SOLVER_BLAS_THREADS` threads (restored on exit)."""
    return _BLAS.limit(limits=SOLVER_BLAS_THREADS, user_api="blas")


def _minimize(objective, start, solver, tol, max_iter, subsample, subsample_steps) -> SolverResult:
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
        # A dual Newton step costs about as much as a few L-BFGS iterations: no warm start.
        if solver == "auto" and form != "dual" and objective.likelihood.n_rows > 1:
            warm = lbfgs(objective, start, tol * WARM_START_LOOSENESS, max_iter)
            start, n_iter = warm.x, int(warm.nit)
        elif solver == "auto" and form == "dense" and subsample is None:
            subsample = hessian_subsample(objective.likelihood, n_params)
        if subsample is None:
            result = newton(objective, tol, max_iter).solve(start)
        else:
            # Only dense Newton takes steps on a subsample's Hessian.
            result = NewtonSolver(objective, tol, max_iter, subsample, subsample_steps).solve(start)
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
