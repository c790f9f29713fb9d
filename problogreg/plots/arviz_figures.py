"""Figures drawn by arviz-plots: ELPD comparison, coefficient forest, trace, rank.

Each is returned as the matplotlib Figure behind arviz-plots' PlotCollection; ArviZ
is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..posterior.arviz_io import flat_draws, posterior_tree


def _arviz_figure(plot_collection):
    return plot_collection.viz["figure"].item()


def comparison(compare_table):
    """ArviZ's ELPD comparison plot of a :func:`problogreg.compare` table.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> models = {"map": plr.MAPLogisticRegression().fit(X, y),
    ...           "lda": plr.SharedCovarianceGaussian().fit(X, y)}
    >>> fig = comparison(plr.compare(models, X, y))
    >>> len(fig.axes) >= 1
    True
    """
    import arviz as az

    table = compare_table.rename(columns={"elpd_loo": "elpd", "p_loo": "p"})
    return _arviz_figure(az.plot_compare(table))


def coefficient_forest(posteriors: Mapping[str, object], *, feature_scale=None):
    """Forest plot of coefficients across models (ArviZ), one colour per model.

    Parameters
    ----------
    posteriors : mapping of name -> DataTree or model with ``idata_`` / ``sample_posterior``
    feature_scale : array of shape (n_features,), optional
        Multiply coefficient j by ``feature_scale[j]`` -- e.g. the sd of x_j, to show
        the effect of one sd on the log-odds, comparable across features in any units.

    Every posterior is pooled into one chain of a common length, so that models
    sampled with different numbers of chains and draws line up.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> laplace = plr.LaplaceLogisticRegression().fit(X, y)
    >>> wide = plr.LaplaceLogisticRegression(prior_scale=10.0).fit(X, y)
    >>> fig = coefficient_forest({"Laplace": laplace, "wide prior": wide})
    >>> len(fig.axes) >= 1
    True
    """
    import arviz as az

    for post in posteriors.values():
        flat_draws(posterior_tree(post, 10, 0), "coef")  # a clear error for a model without coef
    coefs = {
        name: posterior_tree(post, 2000, 0).posterior["coef"] for name, post in posteriors.items()
    }
    n_draws = min(coef.sizes["chain"] * coef.sizes["draw"] for coef in coefs.values())
    trees = {}
    for name, coef in coefs.items():
        extra = [dim for dim in coef.dims if dim not in ("chain", "draw")]
        pooled = coef.stack(sample=("chain", "draw")).transpose("sample", *extra)[:n_draws]
        values = pooled.values * (1.0 if feature_scale is None else np.asarray(feature_scale))
        trees[name] = az.from_dict(
            {"posterior": {"coef": values[None]}},
            coords={dim: coef[dim].values for dim in extra},
            dims={"coef": extra},
        )
    plot = az.plot_forest(trees, var_names=["coef"], combined=True)
    plot.add_legend("model")
    figure = _arviz_figure(plot)
    if feature_scale is not None:
        figure.suptitle("coefficient x sd(x): change in log-odds per sd of the feature")
    return figure


def trace(nuts, *, var_names=("intercept", "coef")):
    """ArviZ trace and marginal density plot of the NUTS draws.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> nuts = plr.PyMCLogisticRegression(draws=300, tune=200, chains=2, random_state=0,
    ...                                   progressbar=False).fit(X, y)
    >>> len(trace(nuts).axes) >= 3, len(rank(nuts).axes) >= 3
    (True, True)
    """
    import arviz as az

    return _arviz_figure(az.plot_trace_dist(nuts.idata_, var_names=list(var_names)))


def rank(nuts, *, var_names=("intercept", "coef")):
    """ArviZ rank plot of the NUTS draws (uniform ranks across chains = good mixing).

    See :func:`trace` for an example.
    """
    import arviz as az

    return _arviz_figure(az.plot_rank(nuts.idata_, var_names=list(var_names)))
