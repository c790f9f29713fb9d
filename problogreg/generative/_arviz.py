"""ArviZ containers for the generative models (imports ArviZ: load lazily)."""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np

from .._elpd import elpd_from_pointwise


def posterior_datatree(variables: dict, log_likelihood: np.ndarray, observed, coords: dict):
    """DataTree with posterior, log_likelihood ``y`` (chain, draw, obs_id) and observed ``y``.

    Parameters
    ----------
    variables : dict of name -> (array of shape (chain, draw, ...), list of dim names)
    log_likelihood : ndarray of shape (chain, draw, n_obs)
    observed : array of shape (n_obs,)
    coords : dict of dim name -> coordinate values
    """
    dims = {name: list(var_dims) for name, (_, var_dims) in variables.items()}
    dims["y"] = ["obs_id"]
    return az.from_dict(
        {
            "posterior": {name: values for name, (values, _) in variables.items()},
            "log_likelihood": {"y": log_likelihood},
            "observed_data": {"y": np.asarray(observed)},
        },
        coords={**coords, "obs_id": np.arange(len(observed))},
        dims=dims,
    )


@dataclass(kw_only=True, repr=False)
class ExactELPDDataLOO(az.ELPDDataLOO):
    """Leave-one-out computed exactly (no importance sampling, so no Pareto k)."""

    def _header(self):
        return (
            f"Exact leave-one-out: {self.n_data_points} closed-form refits, "
            "no importance sampling (pareto_k is 0 by construction)."
        )


def exact_loo(elpd_i: np.ndarray, lpd_i: np.ndarray) -> ExactELPDDataLOO:
    """ELPD data from exact pointwise leave-one-out log predictive densities.

    See :func:`problogreg._elpd.elpd_from_pointwise`.
    """
    return elpd_from_pointwise(elpd_i, lpd_i, n_samples=0, data_class=ExactELPDDataLOO)
