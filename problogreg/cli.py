"""Command line: ``problogreg study`` and ``problogreg fit`` (also ``python -m problogreg``).

Errors in the user's input (the data, the options, the report directory) end
with a one-line message and exit status 2, and are found before any model is
fitted. Anything else is a bug in problogreg: a one-line "internal error"
message and exit status 1, with the full traceback under ``--debug``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import datasets
from .core.validation import format_label, one_line, rows_text
from .models.map import MAPLogisticRegression

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_STATUS_HELP = (
    "Exit status: 0 success; 2 bad input or options (one line on stderr, found before any "
    "fitting); 1 internal error (a bug in problogreg; --debug prints the traceback)."
)

#: A text (non-numeric) CSV column with more distinct values than this, or than
#: ``MAX_TEXT_LEVEL_FRACTION`` of the rows, draws a warning: one-hot encoding it
#: gives so many columns that the models can memorise the training rows.
MAX_TEXT_LEVELS = 20
MAX_TEXT_LEVEL_FRACTION = 0.5


class UsageError(Exception):
    """A problem with the command-line input, reported in one line."""


class HighCardinalityWarning(UserWarning):
    """A text column of the CSV has so many distinct values that one-hot encoding it overfits."""


def read_table(
    path: str, target: str, drop: tuple[str, ...] | list[str] = ()
) -> tuple[pd.DataFrame, pd.Series]:
    """Read a CSV into features and target.

    Categorical (non-numeric) feature columns are one-hot encoded with the
    first level dropped; a text column with more than :data:`MAX_TEXT_LEVELS`
    distinct values, or more than :data:`MAX_TEXT_LEVEL_FRACTION` of the rows,
    draws a :class:`HighCardinalityWarning` (free text such as names or
    comments: leave it out with ``drop`` or encode it as numbers first). The
    columns in ``drop`` are left out. Missing values are an error that names the
    rows; so are an empty file, a file without data rows, and a file without
    feature columns.
    """
    frame = _read_csv(path)
    if target not in frame.columns:
        raise UsageError(f"column {target!r} not in {path}; columns are {list(frame.columns)}")
    unknown = [column for column in drop if column not in frame.columns]
    if unknown:
        raise UsageError(
            f"--drop: columns {unknown} not in {path}; columns are {list(frame.columns)}"
        )
    if target in drop:
        raise UsageError(f"--drop: {target!r} is the target column")
    frame = frame.drop(columns=list(drop))
    if len(frame) == 0:
        raise UsageError(f"{path} has a header line but no data rows")
    if frame.shape[1] == 1:
        raise UsageError(
            f"{path} has no feature columns: {target!r} is its only column"
            + (" after --drop" if drop else "")
        )
    missing = frame.isna().any(axis=1)
    if missing.any():
        lines = np.flatnonzero(missing) + 2  # +2: header line, 1-based
        raise UsageError(
            f"{int(missing.sum())} rows of {path} have missing values (lines "
            f"{rows_text(lines)}); "
            "drop or impute them first"
        )
    y = frame.pop(target)
    if y.nunique() < 2:
        raise UsageError(f"target column {target!r} has a single value; need two classes")
    _warn_about_free_text(frame, path)
    X = pd.get_dummies(frame, drop_first=True, dtype=float)
    return X, y


def _read_csv(path: str) -> pd.DataFrame:
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no such file: {path}")
    try:
        return pd.read_csv(file)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path} is empty: no header line and no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read {path} as CSV: {one_line(err)}") from None


def read_formula_table(path: str, formula: str) -> tuple[pd.DataFrame, pd.Series]:
    """Read a CSV and build the design of a model formula (``"y ~ x + C(g)"``).

    The columns are named by the formula's terms; the response must be one column
    of class labels (binomial counts need one row per group and are fitted with
    :func:`problogreg.from_formula`, not by the study's classifiers).
    """
    from .formula import FormulaDesign

    frame = _read_csv(path)
    if len(frame) == 0:
        raise UsageError(f"{path} has a header line but no data rows")
    try:
        _, X, response = FormulaDesign.fit(formula, frame)
    except ValueError as err:
        raise UsageError(f"--formula: {one_line(err)}") from None
    if response.trials is not None:
        raise UsageError(
            "--formula: the command line fits class labels; a binomial response "
            "('successes + failures ~ ...') is fitted in Python with problogreg.from_formula"
        )
    if X.shape[1] == 0:
        raise UsageError(f"--formula: {formula!r} has no terms besides the intercept")
    y = response.y
    if y.nunique() < 2:
        raise UsageError(f"the response of {formula!r} has a single value; need two classes")
    return X, y


def _warn_about_free_text(features: pd.DataFrame, path: str) -> None:
    n_rows = len(features)
    for column in features.select_dtypes(exclude=["number", "bool"]).columns:
        levels = features[column].nunique()
        if levels > MAX_TEXT_LEVELS or levels > MAX_TEXT_LEVEL_FRACTION * n_rows:
            warnings.warn(
                f"column {column!r} of {path} is text with {levels} distinct values in "
                f"{n_rows} rows: one-hot encoding it adds {levels - 1} columns, enough to "
                f"memorise the training rows. Leave it out with --drop {column}, or encode "
                "it as numbers in the CSV (e.g. group rare values) if it carries signal.",
                HighCardinalityWarning,
                stacklevel=3,
            )


def _load_data(args) -> tuple[pd.DataFrame, pd.Series, str]:
    if args.formula:
        if not args.csv:
            raise UsageError("--formula applies to --csv")
        if args.target or args.drop:
            raise UsageError(
                "--formula names the response and the terms: leave out --target and --drop"
            )
        return (*read_formula_table(args.csv, args.formula), args.csv)
    if args.csv:
        if not args.target:
            raise UsageError("--csv needs --target COLUMN (or --formula 'y ~ ...')")
        X, y = read_table(args.csv, args.target, args.drop or ())
        return X, y, args.csv
    if args.drop:
        raise UsageError("--drop applies to --csv only")
    if args.dataset not in datasets.names():
        raise UsageError(f"unknown dataset {args.dataset!r}; choose from {datasets.names()}")
    X, y = datasets.load(args.dataset)
    return X, y, args.dataset


def read_parquet(path: str, target: str, drop: tuple[str, ...] | list[str] = ()):
    """Open a Parquet file or directory as lazy Dask features and target (nothing is read
    into memory: the fit streams the row groups)."""
    try:
        import dask.dataframe as dd
        import pyarrow  # noqa: F401 (dask reads Parquet through it)
    except ImportError:
        raise UsageError(
            "--parquet needs dask and pyarrow: pip install 'problogreg[dask]'"
        ) from None
    try:
        frame = dd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path} as Parquet: {one_line(err)}") from None
    columns = list(frame.columns)
    if target not in columns:
        raise UsageError(f"column {target!r} not in {path}; columns are {columns}")
    unknown = [column for column in drop if column not in columns]
    if unknown:
        raise UsageError(f"--drop: columns {unknown} not in {path}; columns are {columns}")
    if target in drop:
        raise UsageError(f"--drop: {target!r} is the target column")
    return frame.drop(columns=[target, *drop]), frame[target]


def run_fit(args) -> None:
    """Fit the MAP (or MLE) model and print the coefficient table."""
    if args.parquet:
        run_blocked_fit(args)
        return
    X, y, source = _load_data(args)
    model, kind, elapsed = _fit_model(args, X, y)
    print(
        f"{source}: {X.shape[0]} samples, {X.shape[1]} features, classes "
        f"[{classes_text(model)}]; {kind}; {model.n_iter_} Newton iterations "
        f"({elapsed * 1000:.0f} ms), converged={model.converged_}"
    )
    print(f"training accuracy {model.score(X, y):.3f}; log-likelihood {model.log_likelihood_:.3f}")
    print_coefficients(model)


def classes_text(model) -> str:
    """The fitted classes as the user wrote them: ``0, 1``, not ``np.int64(0), ...``."""
    return ", ".join(format_label(label) for label in model.classes_)


def print_coefficients(model: MAPLogisticRegression) -> None:
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(model.summary().round(4).to_string())


def _fit_model(args, X, y) -> tuple[MAPLogisticRegression, str, float]:
    """The MAP (or MLE) fit of the fit command, its description and its time in seconds."""
    prior_scale = None if args.mle else args.prior_scale
    model = MAPLogisticRegression(
        prior_scale=prior_scale, intercept_prior_scale=None if args.mle else 10.0
    )
    start = time.perf_counter()
    try:
        model.fit(X, y)
    except ValueError as err:  # the estimator's errors about the data are for users
        raise UsageError(one_line(err)) from err
    kind = "MLE" if args.mle else f"MAP, Normal(0, {args.prior_scale:g}/sd(x)) prior"
    return model, kind, time.perf_counter() - start


def run_blocked_fit(args) -> None:
    """Fit a Parquet data set streamed through Dask (the active scheduler, or one at
    ``--scheduler``) and print the coefficient table with posterior sds."""
    if args.csv:
        raise UsageError("use one of --csv and --parquet")
    if args.formula:
        raise UsageError("--formula applies to --csv (a Parquet fit takes --target)")
    if not args.target:
        raise UsageError("--parquet needs --target COLUMN")
    X, y = read_parquet(args.parquet, args.target, args.drop or ())
    client = None
    if args.scheduler:
        from distributed import Client

        try:
            client = Client(args.scheduler, timeout=30)
        except OSError as err:
            raise UsageError(
                f"--scheduler {args.scheduler}: cannot connect: {one_line(err)}"
            ) from None
    try:
        model, kind, elapsed = _fit_model(args, X, y)
    finally:
        if client is not None:
            client.close()  # the connection only: the cluster is the user's
    print(
        f"{args.parquet}: {model.data_fingerprint_.n_samples} samples, "
        f"{model.n_features_in_} features, classes [{classes_text(model)}]; {kind}; "
        f"{model.n_iter_} Newton iterations ({elapsed:.1f} s, one pass over the data "
        f"each), converged={model.converged_}"
    )
    print(f"log-likelihood {model.log_likelihood_:.3f}; std_error is the posterior sd")
    print_coefficients(model)


def run_study_command(args) -> None:
    """Fit every model, print the comparison and write the report."""
    from .report import prepare_report_dir, terminal_summary, write_report
    from .study import StudyInputError, StudySettings, run_study

    X, y, source = _load_data(args)
    settings = StudySettings.quick(args.seed) if args.quick else StudySettings(seed=args.seed)
    settings = dataclasses.replace(settings, resolve_loo=not args.no_loo_resolution)
    start = time.perf_counter()
    try:
        out = prepare_report_dir(Path(args.out))
    except StudyInputError as err:
        raise UsageError(f"--out {args.out}: {err}") from err
    try:
        result = run_study(X, y, name=source, settings=settings, progressbar=sys.stdout.isatty())
    except StudyInputError as err:
        raise UsageError(str(err)) from err
    print()
    print(terminal_summary(result))
    try:
        report = write_report(result, out)
    except OSError as err:  # e.g. the disk filled up or the directory went away
        raise UsageError(f"--out {args.out}: cannot write the report: {one_line(err)}") from err
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
    parser.add_argument(
        "--csv",
        help="a CSV file to use instead of a bundled dataset; text columns are one-hot "
        f"encoded (a warning for more than {MAX_TEXT_LEVELS} distinct values or more than "
        "half the rows: free text, drop it)",
    )
    parser.add_argument("--target", help="the target column of --csv (or --parquet)")
    parser.add_argument(
        "--formula",
        help="a model formula for --csv instead of --target, e.g. 'y ~ age + C(sex) + "
        "age:dose + log(income)': categorical coding, interactions and transforms; the "
        "coefficients are named by its terms",
    )
    parser.add_argument(
        "--drop",
        action="append",
        metavar="COLUMN",
        help="leave this column of --csv out (repeat for more columns)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an internal error (a bug, exit status 1), print the full traceback",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="problogreg", description=__doc__.splitlines()[0], epilog=EXIT_STATUS_HELP
    )
    commands = parser.add_subparsers(dest="command", required=True)
    study = commands.add_parser(
        "study",
        help="fit MAP, Laplace, NUTS, LDA and Naive Bayes; compare; write a report",
        description="Fit MAP, LDA, Naive Bayes, Laplace and NUTS on a training split, "
        "compare them and write a report. A model that cannot be fitted on the data is "
        "reported as a row of the comparison table with the reason; the others still "
        "make the report.",
        epilog=EXIT_STATUS_HELP,
    )
    _add_data_arguments(study, default="breast_cancer")
    study.add_argument(
        "--out",
        default="study-output",
        help="report directory, checked before any fitting; an earlier report in it is "
        "removed at the start, and report.md is written last",
    )
    study.add_argument("--quick", action="store_true", help="fewer draws and chains")
    study.add_argument("--seed", type=int, default=0, help="seed of the split and sampler")
    study.add_argument(
        "--no-loo-resolution",
        action="store_true",
        help="keep one-shot LOO estimates (no refits or K-fold for rows with high Pareto k "
        "or leverage): faster, but rows may be flagged unreliable",
    )
    study.set_defaults(handler=run_study_command)
    fit = commands.add_parser(
        "fit",
        help="fit the MAP/MLE model and print its coefficient table",
        epilog=EXIT_STATUS_HELP,
    )
    _add_data_arguments(fit, default="breast_cancer")
    fit.add_argument("--prior-scale", type=float, default=2.5, help="coefficient prior sd")
    fit.add_argument("--mle", action="store_true", help="flat priors: maximum likelihood")
    fit.add_argument(
        "--parquet",
        metavar="PATH",
        help="a Parquet file or directory (numeric feature columns) to stream through Dask "
        "instead of loading it: one pass over the data per Newton iteration; needs --target",
    )
    fit.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --parquet: the address of a running dask.distributed scheduler to use "
        "(default: the local threaded scheduler)",
    )
    fit.set_defaults(handler=run_fit)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for bad input, 1 for a bug)."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        _terminal_warnings()
        try:
            args.handler(args)
        except UsageError as err:
            print(f"problogreg {args.command}: error: {one_line(err)}", file=sys.stderr)
            return EXIT_USAGE
        except Exception as err:
            if args.debug:
                traceback.print_exc()
            else:
                print(
                    f"problogreg {args.command}: internal error: {type(err).__name__}: "
                    f"{one_line(err)} (a bug in problogreg, not in your input; rerun with "
                    "--debug for the traceback and report it)",
                    file=sys.stderr,
                )
            return EXIT_INTERNAL
    return 0
