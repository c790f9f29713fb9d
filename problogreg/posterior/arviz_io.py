"""Posterior draws as ArviZ DataTrees, with one set of group, variable and dim names.

Every Bayesian model of the package returns its draws in the same shape:

* ``posterior``: ``coef`` (chain, draw, feature) and ``intercept`` (chain,
  draw) for two classes -- the log-odds of ``classes_[1]`` against
  ``classes_[0]``; (chain, draw, class, feature) and (chain, draw, class) for
  more, one row per class -- plus any model-specific parameters;
* ``log_likelihood``: ``y`` (chain, draw, obs_id), the unweighted conditional
  :math:`\\log p(y_i \\mid x_i, \\theta)`, when data were given;
* ``observed_data``: ``y`` (obs_id), the labels;
* ``sample_stats`` for MCMC.

xarray is imported only by the functions that build trees.
"""

from __future__ import annotations

import itertools

import numpy as np


def coef_intercept_variables(intercept: np.ndarray, coef: np.ndarray) -> dict:
    """Per-draw ``coef`` and ``intercept`` variables from every class's rows.

    Parameters
    ----------
    intercept : ndarray of shape (chain, draw, K)
    coef : ndarray of shape (chain, draw, K, d)

    Returns
    -------
    dict of name -> (values, dims after chain and draw). Two classes give the
    contrast of row 1 against row 0 (the row itself when row 0 is a zero
    reference row), the layout of ``coef_``.
    """
    if intercept.shape[-1] == 2:
        return {
            "coef": (coef[..., 1, :] - coef[..., 0, :], ["feature"]),
            "intercept": (intercept[..., 1] - intercept[..., 0], []),
        }
    return {"coef": (coef, ["class", "feature"]), "intercept": (intercept, ["class"])}


def posterior_datatree(
    variables: dict,
    coords: dict,
    *,
    log_likelihood: np.ndarray | None = None,
    observed: np.ndarray | None = None,
    attrs: dict | None = None,
    sample_stats=None,
):
    """Assemble the DataTree described in the module docstring.

    Parameters
    ----------
    variables : dict of name -> (array of shape (chain, draw, ...), list of dim names)
    coords : dict of dim name -> coordinate values (those of unused dims are ignored)
    log_likelihood : ndarray of shape (chain, draw, n_obs), optional
    observed : array of shape (n_obs,), optional
        Required with ``log_likelihood``.
    attrs : dict, optional
        Attributes of the posterior group.
    sample_stats : xarray.Dataset, optional

    Returns
    -------
    xarray.DataTree
    """
    import xarray as xr

    first = next(iter(variables.values()))[0]
    draw_coords = {"chain": np.arange(first.shape[0]), "draw": np.arange(first.shape[1])}
    used = {dim for _, dims in variables.values() for dim in dims}
    posterior = xr.Dataset(
        {name: (("chain", "draw", *dims), values) for name, (values, dims) in variables.items()},
        coords={**draw_coords, **{dim: coords[dim] for dim in used}},
        attrs=attrs or {},
    )
    groups = {"posterior": posterior}
    if sample_stats is not None:
        groups["sample_stats"] = sample_stats
    if log_likelihood is not None:
        obs_id = np.arange(log_likelihood.shape[-1])
        groups["log_likelihood"] = xr.Dataset(
            {"y": (("chain", "draw", "obs_id"), log_likelihood)},
            coords={**draw_coords, "obs_id": obs_id},
        )
        groups["observed_data"] = xr.Dataset(
            {"y": (("obs_id",), np.asarray(observed))}, coords={"obs_id": obs_id}
        )
    return xr.DataTree.from_dict(groups)


def posterior_tree(source, draws: int = 4000, random_state=0):
    """The posterior DataTree of ``source``: a DataTree, or a fitted Bayesian model.

    Models with stored MCMC draws (``idata_``) give all of them; the others
    (Laplace, the conjugate generative models) are sampled ``draws`` times
    through the posterior protocol.
    """
    if hasattr(source, "children"):
        return source
    if hasattr(source, "idata_"):
        return source.sample_posterior()
    if hasattr(source, "sample_posterior"):
        return source.sample_posterior(draws=draws, chains=1, random_state=random_state)
    raise TypeError(
        f"{type(source).__name__} has no posterior: pass a DataTree or a fitted Bayesian "
        "model (LaplaceLogisticRegression, PyMCLogisticRegression, SharedCovarianceGaussian, "
        "NaiveBayes)."
    )


def flat_draws(tree, var: str) -> tuple[np.ndarray, list[str]]:
    """Draws of ``var`` as (n_draws, n_params) with readable parameter names."""
    if var not in tree.posterior:
        raise ValueError(
            f"This posterior has no {var!r} variable (its variables: "
            f"{sorted(tree.posterior.data_vars)}); a model whose logit is not linear in x, "
            "such as Gaussian Naive Bayes, has no coefficients to compare."
        )
    return flatten_draws(tree.posterior[var])


def flatten_draws(array) -> tuple[np.ndarray, list[str]]:
    """A DataArray of draws (chain, draw, ...) as (n_draws, n_params) with readable names."""
    var = array.name
    extra = [dim for dim in array.dims if dim not in ("chain", "draw")]
    values = array.transpose("chain", "draw", *extra).values
    values = values.reshape(values.shape[0] * values.shape[1], -1)
    if not extra:
        return values, [var]
    keys = itertools.product(*[array[dim].values for dim in extra])
    return values, [f"{var}[{', '.join(map(str, key))}]" for key in keys]
