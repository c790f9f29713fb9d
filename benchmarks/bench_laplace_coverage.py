"""Coverage of 90% Laplace credible intervals, plain and importance-corrected.

Each replicate draws the truth from the prior (intercept and coefficients
independent N(0, s), no autoscaling, so the fitted prior is the one that made the
data), n rows of d standard-normal features and labels from the logistic model,
fits ``LaplaceLogisticRegression`` with that prior and asks whether each true
parameter lies in its 90% interval:

* plain: ``summary()`` -- the mode +- 1.645 Laplace sd;
* corrected: ``summary(method="corrected")`` after ``check_approximation()`` --
  weighted quantiles of the importance-weighted Laplace draws.

With the truth drawn from the prior, intervals of the exact posterior cover 90% of
the time on average over replicates, so coverage measures how close each
interval is to the exact posterior's. Replicates where the correction is
unreliable (Pareto k above the threshold) are counted; their corrected intervals
are still scored, from the same weighted draws.

    python benchmarks/bench_laplace_coverage.py --replicates 4000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import special

from problogreg import LaplaceLogisticRegression


def replicate(rng, n, d, scale, draws):
    truth = rng.normal(scale=scale, size=d + 1)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < special.expit(truth[0] + X @ truth[1:])).astype(int)
    if y.min() == y.max():  # one class only: no logistic fit; draw again
        return replicate(rng, n, d, scale, draws)
    model = LaplaceLogisticRegression(
        prior_scale=scale, intercept_prior_scale=scale, autoscale=False
    ).fit(X, y)
    plain = model.summary(ci_prob=0.9)
    check = model.check_approximation(X, y, draws=draws, random_state=rng)
    if check.correction_reliable:
        corrected = model.summary(ci_prob=0.9, method="corrected")
        lower, upper = corrected["ci_lower"].to_numpy(), corrected["ci_upper"].to_numpy()
    else:  # summary refuses; score the same weighted draws directly
        theta = model.result_.layout.to_likelihood(check.draws)
        weights = np.exp(check.log_weights)
        lower, upper = np.quantile(
            theta, [0.05, 0.95], axis=0, weights=weights, method="inverted_cdf"
        )
    covered_plain = (plain["ci_lower"].to_numpy() <= truth) & (
        truth <= plain["ci_upper"].to_numpy()
    )
    covered_corrected = (lower <= truth) & (truth <= upper)
    return covered_plain, covered_corrected, check.correction_reliable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=4000)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--d", type=int, default=3)
    parser.add_argument("--scale", type=float, default=2.5, help="prior sd of every parameter")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    results = [
        replicate(rng, args.n, args.d, args.scale, args.draws) for _ in range(args.replicates)
    ]
    seconds = time.perf_counter() - start
    plain = np.array([r[0] for r in results])
    corrected = np.array([r[1] for r in results])
    reliable = np.array([r[2] for r in results])
    print(
        f"{args.replicates} replicates, n={args.n}, d={args.d}, prior sd {args.scale} on "
        f"every parameter, {args.draws} draws per check ({seconds:.0f} s)"
    )
    print("nominal 0.900; coverage (Monte Carlo se over replicates) per parameter and pooled")
    names = ["intercept", *(f"x{j}" for j in range(args.d))]
    for label, covered in (("plain Laplace", plain), ("corrected", corrected)):
        per_parameter = covered.mean(axis=0)
        # The se treats replicates as independent; parameters within one are pooled.
        pooled_se = covered.mean(axis=1).std(ddof=1) / np.sqrt(len(covered))
        cells = ", ".join(f"{n} {c:.3f}" for n, c in zip(names, per_parameter, strict=True))
        print(f"  {label:14s} pooled {covered.mean():.3f} ± {pooled_se:.3f}   ({cells})")
    print(
        f"  correction reliable (Pareto k below threshold) in {reliable.mean():.1%} of replicates"
    )


if __name__ == "__main__":
    main()
