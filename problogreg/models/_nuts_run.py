"""One NUTS run of the logistic model in PyMC: the start, the mass matrix and the sampler call.

With ``init="laplace"`` every chain starts at a draw from the Laplace Gaussian
of the MAP fit and NUTS uses its covariance as a dense mass matrix, so tuning
only has to adapt the step size.
"""

from __future__ import annotations

import sys

import numpy as np
from threadpoolctl import threadpool_limits

from ..posterior.gaussian import laplace_posterior
from ..posterior.loo import smoothed_log_weights
from ._approximation_check import laplace_draws, laplace_log_ratio
from ._pytensor_env import available_cpus, compile_mode, quiet_missing_blas

#: tune="auto": tuning iterations by the Pareto k of the Laplace Gaussian as an
#: importance-sampling proposal for the exact posterior (the whitening's quality):
#: (k below, tune) pairs, first match wins; otherwise PyMC's default.
AUTO_TUNE = ((0.5, 200), (0.7, 500))
DEFAULT_TUNE = 1000
#: Laplace draws used to judge the whitening.
AUTO_TUNE_DRAWS = 4000


def choose_tune(estimator, finder, result, rng) -> tuple[int, float]:
    r"""The tuning length, and the Pareto k behind it (NaN when not measured).

    With ``init="laplace"`` NUTS runs in coordinates whitened by the Laplace
    covariance, so when the Gaussian is close to the posterior (small k) it needs only
    a short warm-up to adapt the step size; a posterior far from Gaussian gets the
    full default. An integer ``tune`` is used as given.
    """
    if estimator.tune != "auto":
        return estimator.tune, np.nan
    if estimator.init != "laplace" or result.cholesky is None:
        return DEFAULT_TUNE, np.nan
    likelihood = finder.objective.likelihood
    posterior = laplace_posterior(result)
    draws = laplace_draws(posterior, result.layout, AUTO_TUNE_DRAWS, rng)
    data = (likelihood.X, likelihood.y, likelihood.sample_weight)
    log_ratio = laplace_log_ratio(posterior, draws, data, result.log_prior(draws[0]))
    pareto_k = float(smoothed_log_weights(log_ratio)[1])
    tune = next((tune for limit, tune in AUTO_TUNE if pareto_k < limit), DEFAULT_TUNE)
    return tune, pareto_k


def run_nuts(estimator, finder, result, names, rng):
    """Run NUTS with ``estimator``'s settings; return the free draws (chain, draw, n_free),
    the trace and the PyMC model. ``result`` is the MAP fit the chains start from."""
    with quiet_missing_blas():
        import pymc as pm
        import pytensor

        from ._pymc_model import build_model

        model, free = build_model(finder.objective, names, estimator.classes_)
        cores = estimator.cores or min(estimator.chains, available_cpus())
        blas_threads = max(1, available_cpus() // min(cores, estimator.chains))
        # Every function PyMC compiles on the way (initial point, start
        # check, log-density and gradient, trace) uses the chosen backend.
        # The BLAS limit is ours, scoped to the run: chains x BLAS threads never
        # exceed the CPUs, whatever the environment says (unlimited, each chain's
        # BLAS spun threads on cores the other chains needed: 7x slower on 2 cores).
        with (
            pytensor.config.change_flags(mode=compile_mode()),
            model,
            threadpool_limits(limits=blas_threads, user_api="blas"),
        ):
            sample_kwargs = _start_kwargs(estimator, result, pm, model, free, rng)
            trace = pm.sample(
                draws=estimator.draws,
                tune=estimator.tune_,
                chains=estimator.chains,
                cores=cores,
                blas_cores=blas_threads * min(cores, estimator.chains),
                random_seed=rng.integers(np.iinfo(np.int32).max),
                var_names=[variable.name for variable in free],
                progressbar=show_progress(estimator),
                quiet=not show_progress(estimator),
                compute_convergence_checks=False,
                **sample_kwargs,
            )
    free_draws = np.concatenate(
        [
            trace.posterior[variable.name].values.reshape(estimator.chains, estimator.draws, -1)
            for variable in free
        ],
        axis=-1,
    )
    return free_draws, trace, model


def _start_kwargs(estimator, result, pm, model, free, rng) -> dict:
    """Keyword arguments of ``pm.sample`` that set the start and the sampler."""
    if estimator.init == "pymc" or result.cholesky is None:
        # No Hessian (a model too large for a dense one): PyMC's adaptation.
        return {"nuts": {"target_accept": estimator.target_accept}}
    laplace = laplace_posterior(result)
    # Each chain starts at a draw from the Laplace Gaussian, i.e. already in
    # (an approximation of) the typical set, with chains spread like the posterior.
    starts = laplace.sample(estimator.chains, rng)
    initial = model.initial_point()
    sizes = np.cumsum([initial[variable.name].size for variable in free])[:-1]
    initvals = [
        {
            variable.name: block.reshape(initial[variable.name].shape)
            for variable, block in zip(free, np.split(start, sizes), strict=True)
        }
        for start in starts
    ]
    step = pm.NUTS(
        vars=free,
        scaling=laplace.covariance(),
        is_cov=True,
        target_accept=estimator.target_accept,
    )
    return {"step": step, "initvals": initvals}


def show_progress(estimator) -> bool:
    if estimator.progressbar is None:
        return sys.stdout.isatty()
    return bool(estimator.progressbar)
