"""Command line: ``problogreg fit`` (``python -m problogreg fit``).

Errors in the user's input end with a one-line message and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import datasets
from .map import MAPLogisticRegression

EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with the command-line input, reported in one line."""


def read_table(path: str, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """Read a CSV into features and target.

    Categorical (non-numeric) feature columns are one-hot encoded with the
    first level dropped; missing values are an error that names the rows.
    """
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no such file: {path}")
    frame = pd.read_csv(file)
    if target not in frame.columns:
        raise UsageError(f"column {target!r} not in {path}; columns are {list(frame.columns)}")
    missing = frame.isna().any(axis=1)
    if missing.any():
        rows = (np.flatnonzero(missing) + 2).tolist()  # +2: header line, 1-based
        shown = ", ".join(map(str, rows[:10])) + (" ..." if len(rows) > 10 else "")
        raise UsageError(
            f"{int(missing.sum())} rows of {path} have missing values (lines {shown}); "
            "drop or impute them first"
        )
    y = frame.pop(target)
    if y.nunique() < 2:
        raise UsageError(f"target column {target!r} has a single value; need two classes")
    X = pd.get_dummies(frame, drop_first=True, dtype=float)
    return X, y


def _load_data(args) -> tuple[pd.DataFrame, pd.Series, str]:
    if args.csv:
        if not args.target:
            raise UsageError("--csv needs --target COLUMN")
        X, y = read_table(args.csv, args.target)
        return X, y, args.csv
    if args.dataset not in datasets.names():
        raise UsageError(f"unknown dataset {args.dataset!r}; choose from {datasets.names()}")
    X, y = datasets.load(args.dataset)
    return X, y, args.dataset


def run_fit(args) -> None:
    """Fit the MAP (or MLE) model and print the coefficient table."""
    X, y, source = _load_data(args)
    prior_scale = None if args.mle else args.prior_scale
    model = MAPLogisticRegression(
        prior_scale=prior_scale, intercept_prior_scale=None if args.mle else 10.0
    )
    start = time.perf_counter()
    model.fit(X, y)
    elapsed = time.perf_counter() - start
    kind = "MLE" if args.mle else f"MAP, Normal(0, {args.prior_scale:g}/sd(x)) prior"
    print(
        f"{source}: {X.shape[0]} samples, {X.shape[1]} features, classes "
        f"{list(model.classes_)}; {kind}; {model.n_iter_} Newton iterations "
        f"({elapsed * 1000:.0f} ms), converged={model.converged_}"
    )
    print(f"training accuracy {model.score(X, y):.3f}; log-likelihood {model.log_likelihood_:.3f}")
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(model.summary().round(4).to_string())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="problogreg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit the MAP/MLE model and print its coefficient table")
    fit.add_argument("--dataset", default="breast_cancer", help=f"one of {datasets.names()}")
    fit.add_argument("--csv", help="a CSV file to fit instead of a bundled dataset")
    fit.add_argument("--target", help="the target column of --csv")
    fit.add_argument("--prior-scale", type=float, default=2.5, help="coefficient prior sd")
    fit.add_argument("--mle", action="store_true", help="flat priors: maximum likelihood")
    fit.set_defaults(handler=run_fit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (UsageError, ValueError) as err:
        print(f"problogreg {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    return 0
