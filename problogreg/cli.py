"""Command line: ``problogreg study`` and ``problogreg fit`` (also ``python -m problogreg``).

Errors in the user's input end with a one-line message and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import datasets
from .models.map import MAPLogisticRegression

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


def run_study_command(args) -> None:
    """Fit every model, print the comparison and write the report."""
    from .study import StudySettings, run_study, terminal_summary, write_report

    X, y, source = _load_data(args)
    _terminal_warnings()
    settings = StudySettings.quick(args.seed) if args.quick else StudySettings(seed=args.seed)
    start = time.perf_counter()
    result = run_study(X, y, name=source, settings=settings, progressbar=sys.stdout.isatty())
    print()
    print(terminal_summary(result))
    report = write_report(result, Path(args.out))
    print(
        f"\nReport: {report} (figures and CSV tables beside it); "
        f"{time.perf_counter() - start:.0f} s in all."
    )


def _terminal_warnings() -> None:
    """Show warnings as one line each, without the source line of the library call.

    ArviZ's per-call Pareto-k warnings are dropped: the comparison table and the
    diagnostics carry the same information in one place.
    """

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz_plots")


def _add_data_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--dataset", default=default, help=f"one of {datasets.names()}")
    parser.add_argument("--csv", help="a CSV file to use instead of a bundled dataset")
    parser.add_argument("--target", help="the target column of --csv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="problogreg", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    study = commands.add_parser(
        "study", help="fit MAP, Laplace, NUTS, LDA and Naive Bayes; compare; write a report"
    )
    _add_data_arguments(study, default="breast_cancer")
    study.add_argument("--out", default="study-output", help="report directory")
    study.add_argument("--quick", action="store_true", help="fewer draws and chains")
    study.add_argument("--seed", type=int, default=0, help="seed of the split and sampler")
    study.set_defaults(handler=run_study_command)
    fit = commands.add_parser("fit", help="fit the MAP/MLE model and print its coefficient table")
    _add_data_arguments(fit, default="breast_cancer")
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
