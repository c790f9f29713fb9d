"""One NUTS run of the logistic model: the engine, the start, the warm-up and the draws.

Two engines sample the same posterior (the density of ``model_``):

* ``"nutpie"`` (default): nutpie's NUTS (Rust, chains as threads) on the log density
  of :class:`~problogreg.models._whitened_density.WhitenedLogDensity`, evaluated in
  numpy. With ``init="laplace"`` it samples coordinates whitened by the Laplace fit,
  so nothing is compiled and the warm-up only has a step size to adapt.
* ``"pymc"``: PyMC's own NUTS on the compiled PyMC model (chains as processes), with
  the Laplace covariance as a dense mass matrix when ``init="laplace"``.

Either way chains x BLAS threads never exceed the CPUs: the BLAS limit is set for
the run and restored after, whatever the environment says (unlimited, each chain's
BLAS spun threads on cores the other chains needed: 7x slower on 2 cores).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ..posterior.gaussian import laplace_posterior
from ..posterior.loo import smoothed_log_weights
from ._approximation_check import laplace_draws, laplace_log_ratio
from ._pytensor_env import available_cpus, compile_mode, quiet_missing_blas
from ._whitened_density import (
    MAX_DENSE_WHITENING,
    WhitenedLogDensity,
    is_exact,
    whitening_for,
)

#: tune="auto": tuning iterations by the Pareto k of the Laplace Gaussian as an
#: importance-sampling proposal for the exact posterior (the whitening's quality):
#: (k below, tune) pairs, first match wins; otherwise PyMC's default.
AUTO_TUNE = ((0.5, 200), (0.7, 500))
DEFAULT_TUNE = 1000
#: Laplace draws used to judge the whitening.
AUTO_TUNE_DRAWS = 4000
#: nutpie's sampler statistics kept in ``idata_.sample_stats``, under ArviZ's names.
NUTPIE_STATS = {
    "diverging": "diverging",
    "n_steps": "n_steps",
    "depth": "tree_depth",
    "maxdepth_reached": "reached_max_treedepth",
    "step_size": "step_size",
    "mean_tree_accept": "acceptance_rate",
    "energy": "energy",
    "energy_error": "energy_error",
    "max_energy_error": "max_energy_error",
    "logp": "lp",
}


@dataclass(frozen=True)
class NutsRun:
    """What a NUTS run leaves: free draws (chain, draw, n_free), the sampler
    statistics (an ``xarray.Dataset``), the posterior attributes, and the PyMC model
    if the engine needed one (None for nutpie)."""

    free_draws: np.ndarray
    sample_stats: object
    attrs: dict
    model: object | None


def build_pymc_model(objective, names, classes):
    """The PyMC model of ``objective`` and its free variables (PyMC imported here)."""
    with quiet_missing_blas():
        from ._pymc_model import build_model

        return build_model(objective, names, classes)


def choose_tune(estimator, finder, result, rng) -> tuple[int, float]:
    r"""The tuning length, and the Pareto k behind it (NaN when not measured).

    With ``init="laplace"`` NUTS runs in coordinates whitened by the Laplace
    covariance, so when the Gaussian is close to the posterior (small k) it needs only
    a short warm-up to adapt the step size; a posterior far from Gaussian gets the
    full default. An integer ``tune`` is used as given.
    """
    if estimator.tune != "auto":
        return estimator.tune, np.nan
    if not _has_dense_laplace(estimator, result):
        return DEFAULT_TUNE, np.nan
    likelihood = finder.objective.likelihood
    posterior = laplace_posterior(result)
    draws = laplace_draws(posterior, result.layout, AUTO_TUNE_DRAWS, rng)
    data = (likelihood.X, likelihood.y, likelihood.sample_weight)
    log_ratio = laplace_log_ratio(posterior, draws, data, result.log_prior(draws[0]))
    pareto_k = float(smoothed_log_weights(log_ratio)[1])
    tune = next((tune for limit, tune in AUTO_TUNE if pareto_k < limit), DEFAULT_TUNE)
    return tune, pareto_k


def _has_dense_laplace(estimator, result) -> bool:
    """Whether the Laplace Gaussian is used as a dense p x p object (start, mass matrix,
    the Pareto k of ``tune="auto"``)."""
    return (
        estimator.init == "laplace"
        and result.cholesky is not None
        and result.layout.n_free <= MAX_DENSE_WHITENING
    )


def default_cores(sampler: str) -> int:
    """Chains run at once when ``cores=None``.

    nutpie: one. Its chains are threads calling the numpy density, which holds the
    GIL between BLAS calls, so concurrent chains contend; one chain at a time with
    every CPU for BLAS was faster (2 cores, 4 chains x 1200 iterations: 3.6 s against
    6.4 s at n=5000, d=20; 8.3 s against 11.3 s at n=10000, d=50). PyMC: its chains
    are processes, one per CPU.
    """
    return 1 if sampler == "nutpie" else available_cpus()


def run_nuts(estimator, finder, result, names, rng) -> NutsRun:
    """Run NUTS with ``estimator``'s settings from the MAP fit ``result``."""
    cores = min(estimator.cores or default_cores(estimator.sampler), estimator.chains)
    blas_threads = max(1, available_cpus() // cores)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        if estimator.sampler == "nutpie":
            free_draws, stats, attrs = _sample_nutpie(
                estimator, finder.objective, result, rng, cores
            )
            return NutsRun(free_draws, stats, attrs, model=None)
        model, free = build_pymc_model(finder.objective, names, estimator.classes_)
        free_draws, stats, attrs = _sample_pymc(
            estimator, result, model, free, rng, cores, blas_threads
        )
    return NutsRun(free_draws, stats, attrs, model)


def _sample_nutpie(estimator, objective, result, rng, cores):
    """nutpie on the (whitened) numpy log density; nothing to compile.

    ``init="laplace"``: z = 0 is the MAP and, whitened exactly, the posterior is nearly
    N(0, I), so only the step size (and a diagonal correction) is adapted; scaled by
    the Hessian's diagonal only, the diagonal adaptation does more of the work.
    ``init="pymc"``: the free coordinates as they are, from jitter around zero. nutpie's
    diagonal adaptation either way: its low-rank one cost ~2 ms a step at p = 300.
    """
    import nutpie
    from nutpie.compiled_pyfunc import from_pyfunc

    if estimator.init == "laplace":
        whitening = whitening_for(objective, result)
        density = WhitenedLogDensity(objective, result.mode, whitening)
    else:
        whitening = None
        density = WhitenedLogDensity(objective, np.zeros(objective.n_params), None)

    def log_density(z):
        # A divergent trajectory may reach logits of any size; nutpie treats a
        # non-finite value as a divergence, so numpy need not warn about it.
        with np.errstate(over="ignore", invalid="ignore"):
            return density(z)

    base_seed = int(rng.integers(np.iinfo(np.int32).max))

    def start(seed):
        # Laplace: z ~ N(0, I), a draw of the Laplace Gaussian when whitened exactly,
        # already in the typical set. Otherwise PyMC's default: jitter in (-1, 1).
        chain_rng = np.random.default_rng([seed, base_seed])
        if estimator.init == "laplace":
            return chain_rng.standard_normal(density.dim)
        return chain_rng.uniform(-1.0, 1.0, density.dim)

    compiled = from_pyfunc(
        density.dim,
        lambda: log_density,
        lambda *seeds: lambda z: {"free": density.free_parameters(z)},
        [np.dtype(np.float64)],
        [(density.dim,)],
        ["free"],
        make_initial_point_fn=start,
    )
    started = time.perf_counter()
    trace = nutpie.sample(
        compiled,
        draws=estimator.draws,
        tune=estimator.tune_,
        chains=estimator.chains,
        cores=cores,
        seed=base_seed,
        save_warmup=False,
        progress_bar=show_progress(estimator),
        target_accept=estimator.target_accept,
    )
    elapsed = time.perf_counter() - started
    stats = trace.sample_stats.to_dataset()[list(NUTPIE_STATS)].rename(NUTPIE_STATS)
    attrs = {
        "inference_library": "nutpie",
        "inference_library_version": nutpie.__version__,
        "sampling_time": elapsed,
        "tuning_steps": estimator.tune_,
        "whitened_by_laplace": int(is_exact(whitening)),
    }
    return trace.posterior["free"].values, stats, attrs


def _sample_pymc(estimator, result, model, free, rng, cores, blas_threads):
    """PyMC's NUTS on the compiled model."""
    with quiet_missing_blas():
        import pymc as pm
        import pytensor

        # Every function PyMC compiles on the way (initial point, start
        # check, log-density and gradient, trace) uses the chosen backend.
        with pytensor.config.change_flags(mode=compile_mode()), model:
            sample_kwargs = _pymc_start_kwargs(estimator, result, model, free, rng)
            trace = pm.sample(
                draws=estimator.draws,
                tune=estimator.tune_,
                chains=estimator.chains,
                cores=cores,
                blas_cores=blas_threads * cores,
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
    return free_draws, trace.sample_stats.to_dataset(), dict(trace.posterior.attrs)


def _pymc_start_kwargs(estimator, result, model, free, rng) -> dict:
    """Keyword arguments of ``pm.sample`` that set the start and the sampler."""
    import pymc as pm

    if not _has_dense_laplace(estimator, result):
        # No dense Laplace factor (or not asked for): PyMC's diagonal adaptation.
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
