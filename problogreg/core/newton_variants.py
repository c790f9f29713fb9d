r"""Newton's method with the Hessian held otherwise than dense.

The steps, line search and convergence test of :class:`~problogreg.core.newton.NewtonSolver`;
only :math:`H^{-1}g` and :math:`H_{jj}` come from elsewhere:

* :class:`DualNewtonSolver` -- the dual (Woodbury) form for d > n
  (:mod:`problogreg.core.woodbury`), for warm starts (from zero,
  :mod:`problogreg.core.kernel_newton` takes the same steps without passes over X);
* :class:`HessianFreeNewtonSolver` -- Newton-CG: conjugate gradients on
  Hessian-vector products, when no exact form is affordable.

:func:`~problogreg.core.hessian_form.hessian_form` states the rule by which the form is
chosen.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import linalg
from scipy.sparse import linalg as sparse_linalg

from . import hessian_form as forms
from .newton import NewtonSolver, SingularHessianError
from .solver_result import SolverResult

#: Newton-CG (:meth:`HessianFreeNewtonSolver.forcing_term`): conjugate gradients stop at
#: a relative residual of at most CG_RELATIVE_RESIDUAL, never below CG_TEST_MARGIN times
#: what the convergence test resolves, or after CG_MAX_ITER products; X is read in single
#: precision while the residual sought is at least SINGLE_PRECISION_MIN_RESIDUAL.
CG_RELATIVE_RESIDUAL = 0.5
CG_TEST_MARGIN = 0.1
CG_MAX_ITER = 500
SINGLE_PRECISION_MIN_RESIDUAL = 1e-4


class DualNewtonSolver(NewtonSolver):
    """:class:`NewtonSolver` with the Hessian in dual (Woodbury) form (d > n).

    The same steps, line search and convergence test; only :math:`H^{-1}g` and
    :math:`H_{jj}` come from :class:`~problogreg.core.woodbury.WoodburyHessian`,
    at the cost of an rn x rn Cholesky factorisation per step instead of an
    m(d+1) one (see :func:`~problogreg.core.hessian_form.hessian_form`).
    """

    def __init__(self, objective, tol: float, max_iter: int):
        super().__init__(objective, tol, max_iter)
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
    :math:`\sqrt{\hat g}` so that convergence is superlinear. While that residual is at
    least :data:`SINGLE_PRECISION_MIN_RESIDUAL` the products read X in single precision,
    whose error (~1e-7) is far below it.

    A residual bounds the step's error only up to the condition number of the
    preconditioned Hessian: a loosely solved step can look far shorter than it is
    (K = 5, n = 1e5, d = 50: a step solved to 0.5 passed the test 1.1e-6 from the
    optimum). So when the test passes and the dense Hessian costs no more than
    :data:`~problogreg.core.hessian_form.CONFIRMATION_STEPS` Newton-CG steps
    (:func:`~problogreg.core.hessian_form.dense_confirmation_affordable`),
    it is formed there and the test repeated on the exact step; from then on the
    solver takes exact Newton steps, and the result keeps that Hessian.
    """

    def __init__(self, objective, tol: float, max_iter: int):
        super().__init__(objective, tol, max_iter)
        self.single_products = getattr(objective.likelihood, "X_single", None) is not None
        self.exact = False

    def update_hessian(self) -> None:
        self.rows = None
        if self.exact:
            super().update_hessian()
            return
        self.diagonal = self.objective.hessian_diagonal(self.params)
        self.solved_gradient = None

    def hessian_diagonal(self) -> np.ndarray:
        return super().hessian_diagonal() if self.exact else self.diagonal

    def check_convergence(self) -> bool:
        if not super().check_convergence():
            return False
        if self.exact or not forms.dense_confirmation_affordable(self.objective):
            return True
        self.exact = True
        self.update_hessian()
        return super().check_convergence()

    def solve_hessian(self, vector: np.ndarray) -> np.ndarray:
        if self.exact:
            return super().solve_hessian(vector)
        params, n = self.params, len(vector)
        residual = self.forcing_term()
        single = self.single_products and residual >= SINGLE_PRECISION_MIN_RESIDUAL

        def product(v):
            return self.objective.hessian_product(params, v[None, :], single=single)[0]

        # With its dtype given, a LinearOperator does not call matvec on a zero vector
        # to find it out: that probe would cost a Hessian-vector product per step.
        solution, _ = sparse_linalg.cg(
            sparse_linalg.LinearOperator((n, n), matvec=product, dtype=np.float64),
            vector,
            rtol=residual,
            atol=0.0,
            maxiter=CG_MAX_ITER,
            M=sparse_linalg.LinearOperator(
                (n, n), matvec=lambda v: v / self.diagonal, dtype=np.float64
            ),
        )
        return solution

    def result(self, stop_reason: str) -> SolverResult:
        return dataclasses.replace(super().result(stop_reason), deferred_hessian=not self.exact)

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
