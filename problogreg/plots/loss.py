"""The negative log-posterior of a fit at its mode, along one coefficient."""

from __future__ import annotations

import numpy as np

from ..core.likelihood import SoftmaxLikelihood
from ..core.objective import PosteriorObjective
from ..core.validation import feature_names, validate_training_data
from ..posterior.gaussian import laplace_posterior
from ._axes import _figure


def loss_surface(
    model, X, y, *, feature=0, class_index: int = -1, span: float = 4.0, sample_weight=None, ax=None
):
    r"""Negative log-posterior along one coefficient, the others fixed at the optimum.

    Plots :math:`f(\theta) = -\sum_i s_i \log p(y_i|x_i,\theta) + \tfrac12\sum_j
    \theta_j^2/s_j^2` as coefficient ``feature`` of row ``class_index`` moves over
    ``estimate +- span * std_error`` (or +-span when no standard error exists),
    with the optimum marked; with a proper prior the negative log-likelihood
    alone is drawn too, to show what the prior adds.

    Parameters
    ----------
    model : a fitted MAP or Laplace model (anything with a ``result_``), on (X, y)
    feature : int or str
        Column index or name.
    class_index : int, default=-1
        Row of coefficients (multiclass): a class of the likelihood's rows.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> fig = loss_surface(plr.MAPLogisticRegression().fit(X, y), X, y, feature="x1")
    >>> fig.axes[0].get_ylabel()
    'loss'
    """
    result = getattr(model, "result_", None)
    if result is None:
        raise TypeError(
            f"loss_surface draws the objective of a logistic model fitted at its mode; "
            f"{type(model).__name__} has none (no result_). Pass a fitted "
            "MAPLogisticRegression or LaplaceLogisticRegression."
        )
    X_arr, codes, weights = validate_training_data(model, X, y, sample_weight)
    names = feature_names(model)
    if isinstance(feature, str):
        if feature not in names:
            raise ValueError(f"feature {feature!r} is not one of the model's features {names}.")
        feature_index = names.index(feature)
    elif -len(names) <= int(feature) < len(names):
        feature_index = int(feature) % len(names)
    else:
        raise ValueError(
            f"feature={feature} is out of range: the model has {len(names)} features "
            f"(indices 0..{len(names) - 1}, or a name from {names})."
        )
    layout = result.layout
    row = class_index % layout.n_rows
    likelihood = SoftmaxLikelihood(X_arr, codes, weights, layout.n_classes, layout.reference)
    objective = PosteriorObjective(likelihood, result.prior)
    index = layout.coefficient_index(row, feature_index)
    centre = result.theta[index]
    if result.cholesky is None:  # no Hessian (L-BFGS fit): a fixed window
        half = span
    else:
        half = span * laplace_posterior(result).marginal_sd(layout.jacobian())[index]
    values = np.linspace(centre - half, centre + half, 201)
    nll, penalised = [], []
    for value in values:
        theta = result.theta.copy()
        theta[index] = value
        nll.append(likelihood.loss(theta))
        penalised.append(objective.value(layout.from_likelihood(theta)))
    fig, ax = _figure(ax)
    ax.plot(values, penalised, label="negative log-posterior")
    if np.isfinite(result.prior_scale).any():
        ax.plot(values, nll, linestyle="--", label="negative log-likelihood")
    ax.axvline(centre, color="k", linestyle=":", label=f"optimum {centre:.3g}")
    row_class = layout.row_classes(model.classes_)[row]
    ax.set_xlabel(
        f"coefficient of {names[feature_index]}"
        + ("" if layout.binary else f" (class {row_class})")
    )
    ax.set_ylabel("loss")
    ax.set_title("Loss along one weight, the others at the optimum")
    ax.legend(fontsize=8)
    return fig
