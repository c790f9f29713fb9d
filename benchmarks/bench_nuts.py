"""NUTS benchmark: PyMCLogisticRegression against plain PyMC and nutpie, in one run.

Problem: binary logistic regression, n=5000, d=20 by default (``--n``, ``--d``),
features Normal with the Toeplitz correlation 0.9^|i-j|; prior Normal(0, 2.5/sd(x_j))
on the coefficients and Normal(0, 10) on the intercept for every contender.

* ours: ``PyMCLogisticRegression(random_state=...)`` at its defaults (nutpie on the
  posterior whitened by the Laplace fit, 4 chains x 1000 draws, ``tune="auto"``: the
  warm-up length follows the Laplace approximation's Pareto k; the table reports it).
* plain: the same model written directly in PyMC and sampled with
  ``pm.sample(chains=4, cores=<same>, random_seed=...)``: PyMC's defaults
  otherwise (jitter+adapt_diag, default compile backend, 1000 tuning draws).
* nutpie: the same PyMC model compiled by ``nutpie.compile_pymc_model`` (numba
  backend) and sampled with ``adaptation="low_rank"`` (the low-rank modified mass
  matrix, formerly ``low_rank_modified_mass_matrix=True``), its other defaults,
  4 chains x 1000 draws, 1000 tuning draws.

Each fit runs in a fresh Python process, in the environment this script was started
in (no thread variables are set here). "cold" gives it empty compile caches
(PyTensor's and numba's), "warm" reuses the caches the cold run filled. The
contenders alternate run by run (same data and seed in each round), so that
all see the same swings in machine load. Reported: total fit wall time (model
building, compilation, tuning, sampling and, for ours, the MAP/Laplace start and the
output DataTree), minimum bulk ESS over all coefficients and the intercept, their
ratio (min ESS/s) and the speed-ups of ours; and the time to the first posterior in
a fresh process (interpreter start, imports, fit). Usage::

    python benchmarks/bench_nuts.py [--repeats 2] [--seed 0] [--n 5000 --d 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

N_SAMPLES, N_FEATURES, CORRELATION = 5000, 20, 0.9  # defaults of --n and --d
DRAWS, TUNE, CHAINS = 1000, 1000, 4
PRIOR_SCALE, INTERCEPT_PRIOR_SCALE = 2.5, 10.0


def make_data(seed: int, n_samples: int = N_SAMPLES, n_features: int = N_FEATURES):
    import numpy as np

    rng = np.random.default_rng(seed)
    lags = np.abs(np.subtract.outer(np.arange(n_features), np.arange(n_features)))
    cholesky = np.linalg.cholesky(CORRELATION**lags)
    X = rng.standard_normal((n_samples, n_features)) @ cholesky.T
    coef = rng.normal(0.0, 0.5, n_features)
    y = (rng.random(n_samples) < 1.0 / (1.0 + np.exp(-(0.3 + X @ coef)))).astype(int)
    return X, y


def fit_ours(X, y, seed: int, cores: int):
    """Ours at its defaults (``cores`` is for the others)."""
    from problogreg import PyMCLogisticRegression

    model = PyMCLogisticRegression(
        prior_scale=PRIOR_SCALE,
        intercept_prior_scale=INTERCEPT_PRIOR_SCALE,
        draws=DRAWS,
        chains=CHAINS,
        random_state=seed,
        progressbar=False,
    )
    model.fit(X, y)
    print(f"tune used: {model.tune_}", file=sys.stderr)
    idata = model.idata_
    return idata, float(idata.posterior.attrs["sampling_time"]), model.tune_


def plain_model(X, y):
    """The same posterior written directly in PyMC, as a user would."""
    import numpy as np
    import pymc as pm

    coords = {"feature": [f"x{j}" for j in range(X.shape[1])], "obs_id": np.arange(len(y))}
    with pm.Model(coords=coords) as model:
        X_data = pm.Data("X", X, dims=("obs_id", "feature"))
        intercept = pm.Normal("intercept", 0.0, INTERCEPT_PRIOR_SCALE)
        coef = pm.Normal("coef", 0.0, PRIOR_SCALE / X.std(axis=0), dims="feature")
        pm.Bernoulli("y", logit_p=intercept + X_data @ coef, observed=y, dims="obs_id")
    return model


def fit_plain(X, y, seed: int, cores: int):
    import pymc as pm

    with plain_model(X, y):
        idata = pm.sample(
            DRAWS, tune=TUNE, chains=CHAINS, cores=cores, random_seed=seed, progressbar=False
        )
    return idata, float(idata.posterior.attrs["sampling_time"]), TUNE


def fit_nutpie(X, y, seed: int, cores: int):
    import nutpie

    compiled = nutpie.compile_pymc_model(plain_model(X, y), backend="numba")
    started = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        draws=DRAWS,
        tune=TUNE,
        chains=CHAINS,
        cores=cores,
        seed=seed,
        progress_bar=False,
        adaptation="low_rank",  # formerly low_rank_modified_mass_matrix=True
    )
    return idata, time.perf_counter() - started, TUNE


CONTENDERS = {"ours": fit_ours, "plain": fit_plain, "nutpie": fit_nutpie}
#: Ours again with one BLAS thread set in the environment (``--blas-check``): the fit
#: wall should not depend on it, because the fit limits BLAS threads itself.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def child(contender: str, seed: int, cores: int, shape: tuple[int, int]) -> None:
    """Fit once and print the measurements as JSON on the last line."""
    import logging
    import warnings

    started = time.perf_counter()
    X, y = make_data(seed, *shape)
    imported = time.perf_counter()
    logging.getLogger("pymc").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata, sampling_s, tune = CONTENDERS[contender](X, y, seed, cores)
    fitted = time.perf_counter()
    fitted_at = time.time()
    import arviz as az

    posterior = idata.posterior.to_dataset()[["coef", "intercept"]]
    ess = az.ess(posterior, method="bulk")
    rhat = az.rhat(posterior)
    stats = idata.sample_stats
    result = {
        "import_s": imported - started,
        "fit_s": fitted - imported,
        "fitted_at": fitted_at,
        "sampling_s": sampling_s,
        "tune": tune,
        "min_ess_bulk": min(float(ess[name].min()) for name in ess.data_vars),
        "max_r_hat": max(float(rhat[name].max()) for name in rhat.data_vars),
        "steps_per_draw": float(stats["n_steps"].mean()),
        "divergences": int(stats["diverging"].sum()),
        "sampler": str(idata.posterior.attrs.get("inference_library", "?")),
    }
    print(json.dumps(result))


def run_child(contender: str, cache_dir: str, seed: int, cores: int, shape) -> dict:
    """One fit in a fresh process whose compile caches (PyTensor's, numba's) live in
    ``cache_dir``: empty for a cold run, filled by an earlier run for a warm one."""
    env = {
        **os.environ,
        **(ONE_BLAS_THREAD if contender == "ours-1-blas-thread" else {}),
        "PYTENSOR_FLAGS": f"base_compiledir={cache_dir}",
        "NUMBA_CACHE_DIR": os.path.join(cache_dir, "numba"),
    }
    command = [sys.executable, __file__, "--child", contender.split("-")[0], "--seed", str(seed)]
    command += ["--cores", str(cores), "--n", str(shape[0]), "--d", str(shape[1])]
    launched = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{contender} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Interpreter start, imports and fit: what a user waits for the first posterior.
    result["first_posterior_s"] = result.pop("fitted_at") - launched
    result["ess_per_s"] = result["min_ess_bulk"] / result["fit_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="warm runs per contender")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cores", type=int, default=min(CHAINS, os.cpu_count() or 1))
    parser.add_argument("--n", type=int, default=N_SAMPLES, help="samples")
    parser.add_argument("--d", type=int, default=N_FEATURES, help="features")
    parser.add_argument(
        "--blas-check",
        action="store_true",
        help="also run ours with OPENBLAS_NUM_THREADS=1 (and OMP, MKL) set",
    )
    parser.add_argument("--child", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (args.n, args.d)
    if args.child:
        child(args.child, args.seed, args.cores, shape)
        return

    rows = []
    # The contenders alternate, run by run, so that both see the same changes
    # in machine load; the same seed (data and sampler) for both in each round.
    schedule = [("cold", args.seed)] + [("warm", args.seed + 1 + r) for r in range(args.repeats)]
    with tempfile.TemporaryDirectory(prefix="bench-nuts-") as root:
        for cache, seed in schedule:
            for contender in [*CONTENDERS, *(["ours-1-blas-thread"] if args.blas_check else [])]:
                compile_dir = os.path.join(root, contender)
                os.makedirs(compile_dir, exist_ok=True)
                result = run_child(contender, compile_dir, seed, args.cores, shape)
                rows.append({"contender": contender, "cache": cache, "seed": seed, **result})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    print(
        f"n={args.n}, d={args.d}, Toeplitz {CORRELATION}^|i-j|, {CHAINS} chains x "
        f"{DRAWS} draws (plain, nutpie: + {TUNE} tune; ours: tune='auto'), cores={args.cores}, "
        "load average at end "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    header = (
        "| contender | cache | tune | fit wall (s) | sampling (s) | min bulk ESS | min ESS/s "
        "| leapfrog/draw | divergences | max R-hat | time to first posterior (s) |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for row in sorted(rows, key=lambda row: (row["contender"], row["cache"] == "warm")):
        print(
            f"| {row['contender']} | {row['cache']} | {row['tune']} | {row['fit_s']:.1f} | "
            f"{row['sampling_s']:.1f} | {row['min_ess_bulk']:.0f} | {row['ess_per_s']:.0f} | "
            f"{row['steps_per_draw']:.1f} | {row['divergences']} | {row['max_r_hat']:.3f} | "
            f"{row['first_posterior_s']:.1f} |"
        )
    print()
    for cache in ("cold", "warm"):
        runs = [row for row in rows if row["cache"] == cache]
        if not runs:
            continue
        mean = {
            contender: np.mean([r["ess_per_s"] for r in runs if r["contender"] == contender])
            for contender in CONTENDERS
        }
        print(
            f"{cache} caches, min ESS/s of ours (mean over runs): "
            f"{mean['ours'] / mean['nutpie']:.1f}x nutpie low-rank, "
            f"{mean['ours'] / mean['plain']:.1f}x plain pm.sample"
        )
    if args.blas_check:
        wall = {
            name: np.mean([r["fit_s"] for r in rows if r["contender"] == name])
            for name in ("ours", "ours-1-blas-thread")
        }
        print(
            "ours, fit wall in the default environment / with OPENBLAS_NUM_THREADS=1 "
            f"(mean over all runs): {wall['ours'] / wall['ours-1-blas-thread']:.2f}"
        )


if __name__ == "__main__":
    main()
