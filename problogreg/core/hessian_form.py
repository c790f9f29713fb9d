r"""How Newton's method holds the Hessian: the rule that picks dense, dual or free steps.

:func:`hessian_form` compares the floating-point cost per Newton step of the exact
forms that fit in memory (dense, or dual/Woodbury for d > n) and of Newton-CG; the
solver (:mod:`problogreg.core.newton`) and the Laplace fit follow its choice.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

#: Above this size the dense Hessian is not formed (``solver="auto"`` -> L-BFGS).
DENSE_HESSIAN_MAX_BYTES = 2 * 1024**3

#: The solver-choice rule (:func:`hessian_form`): Newton steps a fit is assumed to take (to
#: share the dual form's one-off kernel), conjugate-gradient products per Newton-CG step,
#: and how much cheaper Newton-CG must look before it replaces an exact form.
ASSUMED_NEWTON_STEPS = 10
ASSUMED_CG_PRODUCTS = 25
HESSIAN_FREE_MARGIN = 4.0


def dense_hessian_fits(n_params: int) -> bool:
    return 8 * n_params**2 <= DENSE_HESSIAN_MAX_BYTES


def exact_hessian_form(objective) -> str | None:
    r"""The cheaper exact form of the Hessian whose matrices fit, "dense" or "dual" (None
    when neither fits in :data:`DENSE_HESSIAN_MAX_BYTES`); see :func:`hessian_form`."""
    costs = exact_form_costs(objective)
    return min(costs, key=costs.get) if costs else None


def exact_form_costs(objective) -> dict[str, float]:
    """Floating-point operations per Newton step of the exact forms that fit."""
    if getattr(objective, "layout", None) is None:
        # Not a logistic objective (nothing to cost): its dense Hessian if it fits.
        return {"dense": 0.0} if dense_hessian_fits(objective.n_params) else {}
    likelihood = objective.likelihood
    n, d, m = likelihood.n_samples, likelihood.n_features, likelihood.n_rows
    nnz = stored_entries(likelihood.X)
    costs = {}
    if dense_hessian_fits(objective.n_params):
        costs["dense"] = m * (m + 1) / 2 * nnz**2 / n + (m * d) ** 3 / 3
    r = 1 if likelihood.n_classes == 2 else likelihood.n_classes
    if dual_form_applies(objective) and dense_hessian_fits(r * n):
        kernel = nnz**2 / d / ASSUMED_NEWTON_STEPS
        costs["dual"] = r**2 * m * n**2 + (r * n) ** 3 / 3 + kernel + 12 * m * nnz
    return costs


def stored_entries(X) -> int:
    """Entries of X a product touches: its non-zeros if sparse, else n d."""
    return X.nnz if sparse.issparse(X) else X.shape[0] * X.shape[1]


def hessian_form(objective) -> str:
    r"""How Newton's method should hold the Hessian: "dense", "dual", "free" or "none".

    The rule, by floating-point operations per Newton step (m rows of
    parameters, d features, n samples, z stored entries of X -- nd if dense --,
    r = 1 for two classes and K otherwise):

    * **dense** -- form the m(d+1) Hessian, about :math:`\tfrac{m(m+1)}2 z^2/n`
      for the weighted Gram matrices (:math:`nd^2` for dense X) plus
      :math:`(md)^3/3` for its Cholesky factor;
    * **dual** -- Woodbury form (:mod:`problogreg.core.woodbury`), about
      :math:`r^2 m n^2 + (rn)^3/3` per step plus the kernel
      :math:`X\Lambda^{-1}X^\top` (:math:`z^2/d`) once per fit. Possible only
      when every coefficient has a proper Gaussian prior (not the Jeffreys prior,
      not maximum likelihood);
    * **free** -- Newton-CG: the step :math:`H^{-1}g` by conjugate gradients with
      Hessian-vector products (two passes over X, :math:`4mz`) and the diagonal of
      H as preconditioner, assumed to take :data:`ASSUMED_CG_PRODUCTS` products.
      Chosen when that is :data:`HESSIAN_FREE_MARGIN` times cheaper than the
      cheaper exact form whose matrices fit in :data:`DENSE_HESSIAN_MAX_BYTES`,
      or when neither fits. ``hessian`` is then None (Laplace forms an exact
      form once, at the optimum, if one fits);
    * **none** -- L-BFGS alone, for likelihoods without Hessian-vector products
      (data in blocks) whose dense Hessian does not fit.

    In practice: dense when d is small against n, dual when d exceeds n, free
    when both are large or X is sparse.
    """
    costs = exact_form_costs(objective)
    exact = min(costs, key=costs.get) if costs else None
    if not hasattr(objective, "hessian_product") or not hasattr(
        objective.likelihood, "hessian_product"
    ):
        return exact or "none"
    m = objective.likelihood.n_rows
    free_cost = ASSUMED_CG_PRODUCTS * 4 * m * stored_entries(objective.likelihood.X)
    if exact is None or HESSIAN_FREE_MARGIN * free_cost < costs[exact]:
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
