"""Convergence diagnostics of a NUTS run and the warning that reports them."""

from __future__ import annotations

import warnings

import numpy as np

#: Convergence thresholds of the post-fit diagnostics (Vehtari et al. 2021).
MAX_R_HAT = 1.01
MIN_BULK_ESS = 400


class SamplingWarning(UserWarning):
    """The NUTS run shows signs of not having converged."""


def diagnose(free_draws: np.ndarray, sample_stats) -> dict:
    """R-hat and bulk ESS over the sampled parameters, and the number of divergences."""
    import arviz as az
    import xarray as xr

    draws = xr.DataArray(free_draws, dims=("chain", "draw", "parameter"))
    # A stuck chain has zero variance: R-hat is then NaN, which counts as a failure.
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "max_r_hat": float(az.rhat(draws).max(skipna=False)),
            "min_ess_bulk": float(az.ess(draws, method="bulk").min(skipna=False)),
            "n_divergent": int(sample_stats["diverging"].sum()),
        }


def relative_efficiency(posterior) -> float:
    """Mean ESS per draw of the posterior variables (a Dataset with chain and draw dims):
    ArviZ's ``r_eff`` for PSIS-LOO."""
    import arviz as az

    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    if n_chains == 1:
        return 1.0
    ess = az.ess(posterior, method="mean")
    values = np.hstack([ess[name].values.ravel() for name in ess.data_vars])
    return float(np.nanmean(values) / (n_chains * n_draws))


def warn_if_unconverged(diagnostics: dict) -> None:
    """One SamplingWarning listing every failed check with its remedy."""
    problems = []
    if not diagnostics["max_r_hat"] <= MAX_R_HAT:
        problems.append(
            f"max R-hat {diagnostics['max_r_hat']:.3f} > {MAX_R_HAT} (chains disagree): "
            "increase tune and draws"
        )
    if not diagnostics["min_ess_bulk"] >= MIN_BULK_ESS:
        problems.append(
            f"min bulk ESS {diagnostics['min_ess_bulk']:.0f} < {MIN_BULK_ESS}: increase "
            "draws (or chains)"
        )
    if diagnostics["n_divergent"] > 0:
        problems.append(
            f"{diagnostics['n_divergent']} divergent transitions (the sampler skipped part "
            "of the posterior): raise target_accept (e.g. 0.95) and tune, or use a "
            "tighter prior (smaller prior_scale)"
        )
    if problems:
        warnings.warn(
            "NUTS may not have converged; do not trust these draws yet. "
            + "; ".join(problems)
            + ". Inspect with summary().",
            SamplingWarning,
            stacklevel=3,
        )
