"""Time the MAP/MLE fit against scikit-learn and statsmodels on the same problems.

Every solver minimises the same objective and is checked against a tight
reference before its time counts:

* MAP: L2-penalised logistic regression, ``LogisticRegression(C=1)`` in
  scikit-learn and ``MAPLogisticRegression(prior_scale=1,
  intercept_prior_scale=None, autoscale=False)`` here (Normal(0, 1) prior on
  the coefficients, flat intercept). Reference: scikit-learn newton-cholesky
  at ``tol=1e-12``.
* MLE: statsmodels ``Logit`` / ``MNLogit`` (Newton) has no L2 penalty that
  solves this objective, so it is compared on the unpenalised problem with
  ``MAPLogisticRegression(prior_scale=None, intercept_prior_scale=None)``.
  Reference: statsmodels at ``tol=1e-12``.

Fairness: problogreg runs at its default ``tol``. Each other solver runs at the
loosest tolerance of a ladder that brings every coefficient and intercept
within ``ACCURACY`` of the reference, so no solver is timed on a tighter (or
looser) problem than it needs. Times are medians of repeats, and each repeat
runs all solvers of a problem back to back, so a busy machine slows them alike;
the ratios to scikit-learn newton-cholesky are what to compare across machines.

"floor" (binary problems) is what Newton's method cannot avoid: a solver's
Newton iterations times one weighted Gram matrix X^T W X (the lower quartile of
its timings at one BLAS thread and at the BLAS default). It is given for the
default solver, whose first steps use a subsample's Hessian (each counted as
an iteration), and for ``solver="newton"``, which forms every Hessian from all
rows (there the ratio measures the overhead around the Gram matrices).

Usage::

    python benchmarks/bench_map.py            # the sizes the performance targets use
    python benchmarks/bench_map.py --quick    # small sizes, seconds
    python benchmarks/bench_map.py --full     # n up to 1e6, d up to 100
    python benchmarks/bench_map.py --threads 1  # one BLAS thread (steadier on a busy machine)

The output is a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sklearn
import statsmodels
import statsmodels.api as sm
from scipy.linalg import cholesky, toeplitz
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

from problogreg import MAPLogisticRegression
from problogreg.core.numerics import weighted_gram

#: Largest |coefficient or intercept - reference| for a solver's time to count.
ACCURACY = 1e-6
#: Tolerances tried, loosest first, for the solvers compared against problogreg.
TOLERANCE_LADDER = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10, 1e-12)
REFERENCE_TOL = 1e-12
FEATURE_CORRELATION = 0.5
#: Targets: problogreg's time over scikit-learn's (see ``report``), and over the floor.
SKLEARN_TARGETS = {(2, 200_000, 50): 0.8, (5, 100_000, 50): 1.0}
FLOOR_TARGET = 1.5
SOLVER_SUFFIX = {"auto": "", "newton": ", exact Newton"}
#: Problems as (n_classes, n_samples, n_features).
QUICK_CASES = [(2, 20_000, 10), (5, 20_000, 10)]
TARGET_CASES = [(2, 200_000, 50), (5, 100_000, 50)]
FULL_CASES = [
    (2, 100_000, 20),
    (2, 200_000, 50),
    (2, 100_000, 100),
    (2, 1_000_000, 50),
    (2, 1_000_000, 100),
    (5, 100_000, 20),
    (5, 100_000, 50),
]


def make_data(n_classes: int, n: int, d: int, seed: int = 0):
    """Gaussian features with Toeplitz correlation 0.5^|i-j|, labels from a logistic model."""
    rng = np.random.default_rng(seed)
    root = cholesky(toeplitz(FEATURE_CORRELATION ** np.arange(d)), lower=True)
    X = rng.standard_normal((n, d)) @ root.T
    if n_classes == 2:
        coef = rng.standard_normal(d) * 2 / np.sqrt(d)
        y = (rng.random(n) < 1 / (1 + np.exp(-(X @ coef + 0.5)))).astype(int)
    else:
        coef = rng.standard_normal((n_classes, d)) * 2 / np.sqrt(d)
        intercept = rng.normal(scale=0.5, size=n_classes)
        # Gumbel-max sampling draws y from the softmax of the logits.
        y = np.argmax(X @ coef.T + intercept + rng.gumbel(size=(n, n_classes)), axis=1)
    return X, y


@dataclass
class Fit:
    params: np.ndarray  # intercepts and coefficients, flattened in one fixed layout
    n_iter: int


# -- the solvers, each returning its estimate in a common layout ----------------


def fit_problogreg(X, y, mle: bool, solver: str = "auto") -> Fit:
    prior = dict(prior_scale=None) if mle else dict(prior_scale=1.0, autoscale=False)
    model = MAPLogisticRegression(intercept_prior_scale=None, solver=solver, **prior)
    model.fit(X, y)
    if model.multiclass_ == "reference":
        # Coefficients relative to classes_[0], as statsmodels reports them.
        params = np.column_stack([model.intercept_[1:], model.coef_[1:]])
    else:
        params = np.column_stack([model.intercept_, model.coef_])
    return Fit(params.ravel(), model.n_iter_)


def fit_sklearn(X, y, solver: str, tol: float) -> Fit:
    max_iter = 100 if solver == "newton-cholesky" else 10_000
    model = LogisticRegression(C=1.0, solver=solver, tol=tol, max_iter=max_iter).fit(X, y)
    params = np.column_stack([model.intercept_, model.coef_])
    return Fit(params.ravel(), int(np.max(model.n_iter_)))


def fit_statsmodels(X, y, tol: float) -> Fit:
    design = sm.add_constant(X, has_constant="add")
    model = sm.Logit(y, design) if len(np.unique(y)) == 2 else sm.MNLogit(y, design)
    result = model.fit(method="newton", tol=tol, maxiter=200, disp=0)
    # params: (d + 1,) or (d + 1, K - 1), intercept first; one row per free class.
    params = np.asarray(result.params).reshape(X.shape[1] + 1, -1).T
    return Fit(params.ravel(), int(result.mle_retvals["iterations"]))


# -- timing ---------------------------------------------------------------------


def timed(func: Callable[[], Fit]) -> tuple[float, Fit]:
    start = time.perf_counter()
    fit = func()
    return time.perf_counter() - start, fit


@dataclass
class Row:
    label: str
    problem: str  # "MAP" or "MLE"
    tol: float | None
    times: list[float]
    fit: Fit
    error: float

    @property
    def time(self) -> float:
        return float(np.median(self.times))


def calibrate(label, problem, make_fit, reference: np.ndarray) -> Row:
    """Loosest tolerance of the ladder whose estimate is within ACCURACY of the reference."""
    for tol in TOLERANCE_LADDER:
        seconds, fit = timed(lambda tol=tol: make_fit(tol))
        error = float(np.max(np.abs(fit.params - reference)))
        if error <= ACCURACY:
            break
    return Row(label, problem, tol, [seconds], fit, error)


def run_case(n_classes: int, n: int, d: int, repeats: int) -> tuple[list[Row], dict]:
    X, y = make_data(n_classes, n, d)
    with warnings.catch_warnings():
        # Loose rungs of the tolerance ladder warn about convergence; accuracy is checked.
        warnings.simplefilter("ignore")
        map_reference = fit_sklearn(X, y, "newton-cholesky", REFERENCE_TOL).params
        mle_reference = fit_statsmodels(X, y, REFERENCE_TOL).params

        def ours(mle, solver="auto"):
            seconds, fit = timed(lambda: fit_problogreg(X, y, mle, solver))
            reference = mle_reference if mle else map_reference
            error = float(np.max(np.abs(fit.params - reference)))
            return Row(
                f"problogreg {'MLE' if mle else 'MAP'}{SOLVER_SUFFIX[solver]}",
                "MLE" if mle else "MAP",
                None,
                [seconds],
                fit,
                error,
            )

        rows = [
            ours(mle=False),
            ours(mle=False, solver="newton"),
            calibrate(
                "sklearn newton-cholesky",
                "MAP",
                lambda tol: fit_sklearn(X, y, "newton-cholesky", tol),
                map_reference,
            ),
            calibrate(
                "sklearn lbfgs", "MAP", lambda tol: fit_sklearn(X, y, "lbfgs", tol), map_reference
            ),
            ours(mle=True),
            calibrate(
                "statsmodels Newton", "MLE", lambda tol: fit_statsmodels(X, y, tol), mle_reference
            ),
        ]
        runners = {
            "problogreg MAP": lambda: fit_problogreg(X, y, mle=False),
            "problogreg MAP, exact Newton": lambda: fit_problogreg(X, y, False, "newton"),
            "sklearn newton-cholesky": lambda: fit_sklearn(X, y, "newton-cholesky", rows[2].tol),
            "sklearn lbfgs": lambda: fit_sklearn(X, y, "lbfgs", rows[3].tol),
            "problogreg MLE": lambda: fit_problogreg(X, y, mle=True),
            "statsmodels Newton": lambda: fit_statsmodels(X, y, rows[5].tol),
        }
        gram_weights = np.full(n, 0.25)
        gram_times = []
        for _ in range(repeats - 1):
            for row in rows:
                row.times.append(timed(runners[row.label])[0])
        # The floor takes the faster of one BLAS thread (what the solver uses) and the
        # BLAS default, so it never flatters the solver.
        for threads in (1, None):
            with threadpool_limits(limits=threads, user_api="blas"):
                for _ in range(max(3, repeats)):
                    start = time.perf_counter()
                    weighted_gram(X, gram_weights)
                    gram_times.append(time.perf_counter() - start)
    extra = {"gram": float(np.percentile(gram_times, 25))}
    return rows, extra


# -- report -----------------------------------------------------------------------


def fmt_tol(tol):
    return "default" if tol is None else f"{tol:g}"


def blas_threads() -> str:
    return ", ".join(
        f"{pool['internal_api']} {pool['num_threads']}"
        for pool in threadpool_info()
        if pool["user_api"] == "blas"
    )


def report(cases, repeats: int) -> None:
    print(
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
        f"statsmodels {statsmodels.__version__}, {os.cpu_count()} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"BLAS threads {blas_threads()}; "
        f"median of {repeats} runs; accuracy bar {ACCURACY:g}\n"
    )
    print("| problem | method | tol | time (s) | × sklearn n-c | iterations | max abs Δ vs ref. |")
    print("|---|---|---|---|---|---|---|")
    verdicts = []
    for n_classes, n, d in cases:
        rows, extra = run_case(n_classes, n, d, repeats)
        name = f"{'binary' if n_classes == 2 else f'K={n_classes}'} n={n:g} d={d}"
        base = next(row for row in rows if row.label == "sklearn newton-cholesky").time
        for row in rows:
            what = f"{name} ({row.problem})"
            print(
                f"| {what} | {row.label} | {fmt_tol(row.tol)} | {row.time:.3f} | "
                f"{row.time / base:.2f} | {row.fit.n_iter} | {row.error:.1e} |"
            )
        ours = rows[0]
        lbfgs = rows[3]
        if n_classes == 2:
            for row in rows[:2]:
                floor = row.fit.n_iter * extra["gram"]
                print(
                    f"| {name} (MAP) | floor of {row.label}: {row.fit.n_iter} it. × one Gram "
                    f"({extra['gram']:.4f} s) | | {floor:.3f} | {floor / base:.2f} | | |"
                )
                verdicts.append((name, f"{row.label} / its floor", row.time / floor, FLOOR_TARGET))
        # The binary target is set against newton-cholesky, the multiclass one
        # against the faster of scikit-learn's two solvers.
        bound = SKLEARN_TARGETS.get((n_classes, n, d))
        if n_classes == 2:
            verdicts.append((name, "problogreg / sklearn newton-cholesky", ours.time / base, bound))
        else:
            faster = min(base, lbfgs.time)
            verdicts.append((name, "problogreg / faster sklearn solver", ours.time / faster, bound))
    print("\nRatios of medians in this run, with the performance targets where set:\n")
    for name, what, value, bound in verdicts:
        status = (
            ""
            if bound is None
            else f" (target <= {bound}: {'met' if value <= bound else 'NOT met'})"
        )
        print(f"- {name}: {what} = {value:.2f}{status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    size.add_argument("--full", action="store_true", help="n up to 1e6, d up to 100")
    parser.add_argument("--repeats", type=int, default=None, help="runs per timing")
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS threads (default: the BLAS default)"
    )
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else FULL_CASES if args.full else TARGET_CASES
    repeats = args.repeats or (3 if args.full else 5)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        report(cases, repeats)


if __name__ == "__main__":
    main()
