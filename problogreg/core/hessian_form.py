r"""How Newton's method holds the Hessian: the rule that picks dense, dual or free steps.

:func:`hessian_form` compares the floating-point cost per Newton step of the exact
forms that fit in memory (dense, or dual/Woodbury for d > n) and of Newton-CG; the
solver (:mod:`problogreg.core.minimize`) follows its choice. :func:`exact_hessian_form`
picks the exact form held once at the optimum (the Laplace posterior, standard errors).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

#: Above this size the dense Hessian is not formed (``solver="auto"`` -> L-BFGS).
DENSE_HESSIAN_MAX_BYTES = 2 * 1024**3

#: The solver-choice rule (:func:`hessian_form`), calibrated on one core (OpenBLAS, AVX2) by
#: timing whole fits in each form over n = 100-5000, d = 500-20000, K = 2-5: Newton steps a
#: fit is assumed to take (to share the dual form's one-off kernel), conjugate-gradient
#: products per Newton-CG step, how much slower a pass over X (memory-bound) runs per
#: operation than a matrix product (compute-bound), and the fixed cost of one
#: Hessian-vector product (Python and call overhead) in operations.
ASSUMED_NEWTON_STEPS = 10
ASSUMED_CG_PRODUCTS = 10
MEMORY_BOUND_PENALTY = 4.0
PRODUCT_OVERHEAD = 2e6


def dense_hessian_fits(n_params: int) -> bool:
    return 8 * n_params**2 <= DENSE_HESSIAN_MAX_BYTES


#: Forming and factorising the exact Hessian at the optimum takes BLAS on every core only
#: above this many operations; below it, on the solver's threads
#: (:data:`~problogreg.core.minimize.SOLVER_BLAS_THREADS`). On the 2-core development
#: machine a second thread made the mid-sized calls of a dual-form Hessian (n = 200,
#: d = 2000, K = 3) take 20-36 ms instead of 3.9, while it cuts a weighted Gram matrix of
#: 2e9 operations from 41 to 22 ms.
ALL_CORES_MIN_OPERATIONS = 1e9


def exact_hessian_form(objective) -> str | None:
    r"""The exact form of the Hessian to hold once, at the optimum (for the Laplace
    posterior and standard errors): "dense" or "dual", whichever is cheaper to form and
    factorise (:func:`exact_form_costs` with ``per_step=False``), or None when neither
    fits in :data:`DENSE_HESSIAN_MAX_BYTES`."""
    choice = exact_hessian_choice(objective)
    return None if choice is None else choice[0]


def exact_hessian_choice(objective) -> tuple[str, float] | None:
    """The form :func:`exact_hessian_form` picks and its cost in operations."""
    costs = exact_form_costs(objective, per_step=False)
    if not costs:
        return None
    form = min(costs, key=costs.get)
    return form, costs[form]


def exact_form_costs(objective, per_step: bool = True) -> dict[str, float]:
    """Operations to form and factorise each exact form that fits; ``per_step``, the
    dual form's kernel is shared by :data:`ASSUMED_NEWTON_STEPS` steps
    (:func:`hessian_form`), else formed once."""
    if getattr(objective, "layout", None) is None:
        # Not a logistic objective (nothing to cost): its dense Hessian if it fits.
        return {"dense": 0.0} if dense_hessian_fits(objective.n_params) else {}
    likelihood = objective.likelihood
    n, d, m = likelihood.n_samples, likelihood.n_features, likelihood.n_rows
    nnz = stored_entries(likelihood.X)
    costs = {}
    if dense_hessian_fits(objective.n_params):
        costs["dense"] = m * (m + 1) / 2 * nnz**2 / n + (m * d) ** 3 / 3
    r = likelihood.n_classes - 1
    if dual_form_applies(objective) and dense_hessian_fits(r * n):
        # Steps run in the span of the data (kernel_newton): no pass over X.
        kernel = nnz**2 / d / (ASSUMED_NEWTON_STEPS if per_step else 1)
        costs["dual"] = (r**2 + r + 1) * m * n**2 + (r * n) ** 3 / 3 + kernel
    return costs


def hessian_free_cost(objective) -> float:
    """Operations per Newton-CG step (:func:`hessian_form`); a pass over X is costed at
    half its double-precision cost, as X is normally read in single precision."""
    likelihood = objective.likelihood
    pass_cost = MEMORY_BOUND_PENALTY * stored_entries(likelihood.X)
    product = 2 * likelihood.n_rows * pass_cost + PRODUCT_OVERHEAD
    return ASSUMED_CG_PRODUCTS * product


#: Newton-CG steps' worth of operations (:func:`hessian_free_cost`) the dense Hessian may
#: cost for a Newton-CG convergence verdict to be confirmed on it.
CONFIRMATION_STEPS = 3


def dense_confirmation_affordable(objective) -> bool:
    """Whether the dense Hessian fits and, formed and factorised once, costs at most
    :data:`CONFIRMATION_STEPS` Newton-CG steps (the solver then confirms its verdict on
    the exact step, see :class:`~problogreg.core.newton_variants.HessianFreeNewtonSolver`)."""
    dense = exact_form_costs(objective, per_step=False).get("dense")
    return dense is not None and dense <= CONFIRMATION_STEPS * hessian_free_cost(objective)


def stored_entries(X) -> int:
    """Entries of X a product touches: its non-zeros if sparse, else n d."""
    return X.nnz if sparse.issparse(X) else X.shape[0] * X.shape[1]


def hessian_form(objective) -> str:
    r"""How Newton's method should hold the Hessian: "dense", "dual", "free" or "none".

    The rule compares operations per Newton step (m rows of parameters, d
    features, n samples, z stored entries of X -- nd if dense --, r = K - 1; a
    pass over X, memory-bound, counts :data:`MEMORY_BOUND_PENALTY` times its 2z
    operations):

    * **dense** -- form the m(d+1) Hessian, about :math:`\tfrac{m(m+1)}2 z^2/n`
      for the weighted Gram matrices (:math:`nd^2` for dense X) plus
      :math:`(md)^3/3` for its Cholesky factor;
    * **dual** -- Woodbury form (:mod:`problogreg.core.woodbury`), steps in the
      span of the data (:mod:`problogreg.core.kernel_newton`), about
      :math:`(r^2 + r + 1) m n^2 + (rn)^3/3` per step and no pass over X, plus
      the kernel :math:`X\Lambda^{-1}X^\top` (:math:`z^2/d`) once per fit.
      Possible only when every coefficient has a proper Gaussian prior (not the
      Jeffreys prior, not maximum likelihood);
    * **free** -- Newton-CG: the step :math:`H^{-1}g` by conjugate gradients with
      Hessian-vector products (two passes over X each, read in single precision,
      plus :data:`PRODUCT_OVERHEAD`), assumed to take :data:`ASSUMED_CG_PRODUCTS`
      products. Chosen when that is cheaper than the cheaper exact form whose
      matrices fit in :data:`DENSE_HESSIAN_MAX_BYTES`, or when neither fits.
      ``hessian`` is then None (an exact form is formed once, at the optimum, when
      needed and one fits);
    * **none** -- L-BFGS alone, for likelihoods without Hessian-vector products
      (data in blocks) whose dense Hessian does not fit.

    In practice: dense when d is small against n (up to n/d ~ 50-100 at d = 200);
    dual when d exceeds n and n(K-1) is up to several hundred; Newton-CG when d
    approaches or exceeds a larger n, or X is sparse.
    """
    costs = exact_form_costs(objective)
    exact = min(costs, key=costs.get) if costs else None
    if not hasattr(objective, "hessian_product") or not hasattr(
        objective.likelihood, "hessian_product"
    ):
        return exact or "none"
    if exact is None or hessian_free_cost(objective) < costs[exact]:
        return "free"
    return exact


def dual_form_applies(objective) -> bool:
    """Whether the objective's Hessian has the Woodbury form: a Gaussian prior, proper
    on every coefficient, on a logistic likelihood held in memory (dense or sparse X;
    data in blocks have no per-sample curvature factors)."""
    layout = getattr(objective, "layout", None)
    if layout is None or getattr(objective, "jeffreys", None) is not None:
        return False
    if not hasattr(objective.likelihood, "curvature_root"):
        return False
    coef_precision = objective.precision[layout.n_intercepts :]
    return bool(np.all(coef_precision > 0))


def check_exact_posterior_fits(objective, dense_matrices: int) -> None:
    """Refuse an exact Gaussian posterior (Laplace) whose matrices would not fit in
    :data:`DENSE_HESSIAN_MAX_BYTES`, naming the memory it would need.

    The dual (Woodbury) form needs one rn x rn matrix (r = K - 1) and is used when d > n
    (:func:`exact_hessian_form`); the dense form ``dense_matrices`` p x p matrices. No
    approximate posterior is substituted."""
    if exact_hessian_form(objective) == "dual":
        return
    n_params = objective.n_params
    needed = dense_matrices * 8 * n_params**2
    if needed <= DENSE_HESSIAN_MAX_BYTES:
        return
    likelihood = objective.likelihood
    n_dual = (likelihood.n_classes - 1) * likelihood.n_samples
    dual = (
        f"; its dual (Woodbury) form, which needs a proper prior on every coefficient, "
        f"would need a {n_dual} x {n_dual} matrix, {8 * n_dual**2 / 1024**3:.1f} GiB"
        if dual_form_applies(objective)
        else ""
    )
    raise MemoryError(
        f"The Laplace posterior over {n_params} parameters (classes x (features + 1)) "
        f"needs {dense_matrices} dense {n_params} x {n_params} matrices, "
        f"{needed / 1024**3:.1f} GiB{dual} (limit {DENSE_HESSIAN_MAX_BYTES / 1024**3:.0f} "
        "GiB). Reduce the number of features (selection or PCA) or of samples, or use "
        "MAPLogisticRegression for a point estimate (its default solver forms no dense "
        "Hessian at this size)."
    )
