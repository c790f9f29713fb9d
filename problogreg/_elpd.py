"""ArviZ ELPD results from pointwise leave-one-out values computed by problogreg itself."""

from __future__ import annotations

import numpy as np


def elpd_from_pointwise(elpd_i: np.ndarray, lpd_i: np.ndarray, *, n_samples: int, data_class=None):
    r"""An ``ELPDDataLOO`` (or subclass) from pointwise LOO log predictive densities.

    ``elpd = sum(elpd_i)``, ``se = sqrt(n var(elpd_i))`` (ArviZ's convention) and
    ``p = sum(lpd_i) - elpd``, the effective number of parameters, where ``lpd_i``
    is the full-data log predictive density of sample i. Pareto k is 0: no
    importance sampling is involved.

    Parameters
    ----------
    elpd_i, lpd_i : ndarray of shape (n,)
    n_samples : int
        Posterior draws behind the values (0 for closed forms, 1 for a point estimate).
    data_class : subclass of ``arviz.ELPDDataLOO``, optional
    """
    import arviz as az
    import xarray as xr

    n = len(elpd_i)
    pointwise = xr.DataArray(elpd_i, dims=["obs_id"], coords={"obs_id": np.arange(n)})
    return (data_class or az.ELPDDataLOO)(
        elpd=float(np.sum(elpd_i)),
        se=float(np.sqrt(n * np.var(elpd_i))),
        p=float(np.sum(lpd_i) - np.sum(elpd_i)),
        n_samples=n_samples,
        n_data_points=n,
        scale="log",
        warning=False,
        good_k=0.7,
        elpd_i=pointwise,
        pareto_k=xr.zeros_like(pointwise),
    )
