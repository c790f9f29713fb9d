"""Cost of the Laplace posterior on top of the MAP fit.

Measures, on one synthetic binary problem (n = 200 000, d = 50, Toeplitz
0.5^|i-j| feature correlation):

* Laplace fit time / MAP fit time (target <= 1.3): the Laplace fit is the MAP
  fit plus the covariance from the Cholesky factor and the evidence;
* ``check_approximation`` (4000 importance draws over all n rows);
* moderated ("probit") vs plug-in prediction on the training rows.

Times are medians (and minima) over interleaved repeats, so that load from
other processes on a shared machine hits both sides of a ratio alike. The
Laplace-only step (covariance from the Cholesky factor, evidence, effective
number of parameters) is also timed on its own: it is the whole difference
between the two fits, and it is not blurred by the solver's run-to-run noise.

BLAS runs single-threaded by default (``--threads``): on a small machine shared
with other jobs, a multi-threaded BLAS competing for the cores makes single
timings vary several-fold.

Run: ``python benchmarks/bench_laplace.py [--n 200000] [--d 50] [--repeats 5] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import linalg, special
from threadpoolctl import threadpool_limits

from problogreg import GaussianPosterior, LaplaceLogisticRegression, MAPLogisticRegression
from problogreg.models._evidence import effective_n_params, laplace_log_evidence


def make_data(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    correlation = linalg.toeplitz(0.5 ** np.arange(d))
    X = rng.standard_normal((n, d)) @ linalg.cholesky(correlation)
    weights = rng.normal(scale=0.3, size=d)
    y = (rng.random(n) < special.expit(0.2 + X @ weights)).astype(int)
    return X, y


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        run(args)


def run(args) -> None:

    X, y = make_data(args.n, args.d)
    map_model, laplace = MAPLogisticRegression(), LaplaceLogisticRegression()
    map_model.fit(X, y)  # warm-up (BLAS threads, page faults)
    fit_times = {"map": [], "laplace": []}
    for _ in range(args.repeats):
        fit_times["map"].append(timed(lambda: map_model.fit(X, y)))
        fit_times["laplace"].append(timed(lambda: laplace.fit(X, y)))
    assert np.allclose(laplace.coef_, map_model.coef_)
    map_fit = float(np.median(fit_times["map"]))
    laplace_fit = float(np.median(fit_times["laplace"]))
    best_ratio = min(fit_times["laplace"]) / min(fit_times["map"])
    result = laplace.result_

    def laplace_only_step():
        """What a Laplace fit adds to the MAP fit: the Gaussian, its covariance, the evidence."""
        covariance = GaussianPosterior(result.mode, result.cholesky).covariance()
        effective_n_params(result, covariance)
        laplace_log_evidence(result)

    extra = float(np.median([timed(laplace_only_step) for _ in range(5)]))

    check_time = timed(lambda: laplace.check_approximation(X, y, draws=args.draws, random_state=0))
    check = laplace.check_approximation(X, y, draws=args.draws, random_state=0)
    predict_times = {"map": [], "probit": []}
    for _ in range(args.repeats):
        predict_times["map"].append(timed(lambda: laplace.predict_proba(X, method="map")))
        predict_times["probit"].append(timed(lambda: laplace.predict_proba(X)))
    map_predict = float(np.median(predict_times["map"]))
    probit_predict = float(np.median(predict_times["probit"]))

    print(
        f"Laplace benchmark: n={args.n}, d={args.d}, binary, medians of {args.repeats}, "
        f"{args.threads} BLAS thread(s)"
    )
    rows = [
        ("MAP fit", map_fit, 1.0),
        ("Laplace fit", laplace_fit, laplace_fit / map_fit),
        ("  Laplace-only step", extra, extra / map_fit),
        (f"check_approximation ({args.draws} draws)", check_time, check_time / map_fit),
        ("predict_proba, map", map_predict, 1.0),
        ("predict_proba, probit", probit_predict, probit_predict / map_predict),
    ]
    print(f"{'step':<36}{'seconds':>10}{'ratio':>9}")
    for name, seconds, ratio in rows:
        print(f"{name:<36}{seconds:>10.4f}{ratio:>9.2f}")
    print("ratios: fits and the check against the MAP fit; probit against map prediction")
    verdict = "met" if laplace_fit / map_fit <= 1.3 else "NOT met"
    print(
        f"Laplace/MAP fit time: {laplace_fit / map_fit:.2f} (medians; target <= 1.3: {verdict}), "
        f"{best_ratio:.2f} (minima), {1 + extra / map_fit:.4f} (MAP + Laplace-only step)"
    )
    print(f"check_approximation: {check.verdict}")


if __name__ == "__main__":
    main()
