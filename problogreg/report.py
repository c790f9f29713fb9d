"""The study's report: the terminal summary, and the Markdown report with figures and tables.

:func:`prepare_report_dir` checks the report directory before any fitting and
removes an earlier run's files; :func:`write_report` writes the tables as CSV,
the figures as PNG and ``report.md`` last, so a run that fails never leaves an
earlier report looking current.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .core.validation import one_line
from .study import StudyInputError, StudyResult, fitted_rows

#: The file names a report writes; :func:`prepare_report_dir` removes an earlier
#: run's copies so that none of them can be mistaken for this run's.
REPORT_FILES = (
    "report.md",
    *(
        f"{stem}.csv"
        for stem in ("comparison", "diagnostics", "laplace_vs_nuts", "map_coefficients")
    ),
    *(
        f"{stem}.png"
        for stem in (
            "comparison",
            "calibration",
            "forest",
            "laplace_vs_nuts",
            "nuts_rank",
            "loss_surface",
            "decision_regions",
        )
    ),
)


#: Columns of counts: a model that could not be fitted leaves NaN in them, which makes
#: pandas store them as floats, but they are printed as whole numbers.
COUNT_COLUMNS = ("rank", "n_refits")


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table of ``frame`` (index included) with numbers rounded to ``digits``, the
    :data:`COUNT_COLUMNS` as whole numbers."""

    def cell(value, places: int) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.{places}f}" if np.isfinite(value) else ""
        return str(value)

    places = [0 if column in COUNT_COLUMNS else digits for column in frame.columns]
    index_names = [str(n) if n is not None else "" for n in frame.index.names]
    header = [*index_names, *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in frame.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        cells = [cell(value, n) for value, n in zip(row.tolist(), places, strict=True)]
        lines.append("| " + " | ".join([*map(str, keys), *cells]) + " |")
    return "\n".join(lines)


def ranking_lead(comparison: pd.DataFrame) -> str:
    """The sentence the comparison opens with: the ranking, stated only when every fitted
    row's ELPD-LOO is reliable; otherwise which rows are not, and why."""
    table = fitted_rows(comparison)
    unreliable = table.index[table["pareto_k_warning"].astype(bool)]
    methods = "; ".join(f"{name}: {table.loc[name, 'loo_method']}" for name in table.index)
    k_fold = [str(name) for name in table.index if "-fold CV" in table.loc[name, "loo_method"]]
    caveat = (
        f" K-fold CV ({', '.join(k_fold)}) scores fits to 9/10 of the data, so it is "
        "somewhat pessimistic next to leave-one-out rows."
        if k_fold and len(k_fold) < len(table)
        else ""
    )
    if len(unreliable) == 0:
        ranking = " > ".join(map(str, table.index))
        return (
            f"Ranking by ELPD-LOO (every estimate reliable): {ranking}. "
            f"How each was computed: {methods}.{caveat}"
        )
    reasons = [
        f"{name} (max Pareto k {table.loc[name, 'max_pareto_k']:.2f} after "
        f"{table.loc[name, 'loo_method']})"
        for name in unreliable
    ]
    return (
        "No ranking: the ELPD-LOO of "
        + ", ".join(reasons)
        + " is unreliable (Pareto k above the threshold, or a refit failed), so the "
        "comparison below is indicative only; compare the held-out test_* columns, or "
        "refit with more data. How each was computed: " + methods + "."
    )


def _missing(result: StudyResult, needed: tuple[str, ...]) -> str:
    """Why a section is empty: the models it needs that were not fitted."""
    absent = [m for m in needed if m not in result.models]
    reasons = [
        f"{m} was not fitted" + (" (see above)" if m in result.failures else "") for m in absent
    ]
    return "Not available: " + "; ".join(reasons) + "."


def _failure_lines(result: StudyResult) -> list[str]:
    return [f"- {label}: {why}" for label, why in result.failures.items()]


def terminal_summary(result: StudyResult) -> str:
    """The comparison, diagnostics and agreement as plain text for the terminal."""
    columns = [
        c
        for c in (
            "fit_seconds",
            "elpd_loo",
            "se",
            "elpd_diff",
            "dse",
            "weight",
            "p_loo",
            "pareto_k_warning",
            "test_log_loss",
            "test_accuracy",
            "test_ece",
        )
        if c in result.comparison.columns
    ]
    parts = [
        f"Model comparison on {result.name} (ELPD-LOO on the training split; test_* "
        "on the held-out split)",
        ranking_lead(result.comparison),
        fitted_rows(result.comparison)[columns].round(3).to_string(),
    ]
    if result.failures:
        parts += ["Models that could not be fitted", "\n".join(_failure_lines(result))]
    if result.notes:
        parts += ["Notes", "\n".join(f"- {note}" for note in result.notes)]
    parts += [
        "Diagnostics",
        result.diagnostics.round(3).to_string(),
        "Laplace vs NUTS",
        result.agreement.verdict
        if result.agreement is not None
        else _missing(result, ("Laplace", "NUTS")),
        "Laplace approximation check",
        str(result.approximation_check.verdict)
        if result.approximation_check is not None
        else _missing(result, ("Laplace",)),
    ]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        return "\n\n".join(parts)


def prepare_report_dir(out: Path) -> Path:
    """Check that a report can be written to ``out``, before any fitting.

    Creates the directory (and its parents) and removes an earlier run's
    report files (:data:`REPORT_FILES`), so that a run that fails part-way
    leaves no report that looks like its own.

    Raises
    ------
    StudyInputError
        When ``out`` is a file, lies under a file, or cannot be written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StudyInputError(f"the report directory {out} is a file; give a directory")
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise StudyInputError(
            f"the report directory {out} would be inside {ancestor}, which is a file"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
        for name in REPORT_FILES:
            (out / name).unlink(missing_ok=True)
    except OSError as err:
        raise StudyInputError(
            f"cannot write the report to {out}: {err.strerror or one_line(err)}"
        ) from err
    return out


def write_report(result: StudyResult, out: Path) -> Path:
    """Write report.md, the figures (PNG) and the tables (CSV) into ``out``.

    ``report.md`` is written last, through a temporary file moved into place,
    so it exists only once everything it links to has been written.
    """
    out.mkdir(parents=True, exist_ok=True)
    tables = {"comparison": result.comparison, "diagnostics": result.diagnostics}
    if result.agreement is not None:
        tables["laplace_vs_nuts"] = result.agreement.table
    if result.coefficient_table is not None:
        tables["map_coefficients"] = result.coefficient_table
    for stem, table in tables.items():
        table.to_csv(out / f"{stem}.csv")
    for stem, figure in result.figures.items():
        figure.savefig(out / f"{stem}.png", dpi=110, bbox_inches="tight")
    n, d = result.X_train.shape
    sections = [
        f"# Model comparison study: {result.name}",
        f"Training split: {n} samples, {d} features, classes "
        f"{sorted(map(str, result.y_train.unique()))}. ELPD-LOO is computed on the "
        "training split (higher is better); `test_*` columns score the held-out split.",
        "## Comparison",
        ranking_lead(result.comparison),
        markdown_table(result.comparison.drop(columns=["diag_diff", "diag_elpd"], errors="ignore")),
        "![comparison](comparison.png)",
    ]
    if result.failures:
        sections += ["## Models that could not be fitted", "\n".join(_failure_lines(result))]
    if result.notes:
        sections += ["## Notes", "\n".join(f"- {note}" for note in result.notes)]
    sections += ["## Diagnostics", markdown_table(result.diagnostics), "## Laplace vs NUTS"]
    if result.agreement is not None:
        sections += [
            result.agreement.verdict,
            markdown_table(result.agreement.table),
            "![marginals](laplace_vs_nuts.png)\n\n![forest](forest.png)",
        ]
    else:
        sections.append(_missing(result, ("Laplace", "NUTS")))
    sections.append("## Laplace approximation check")
    if result.approximation_check is not None:
        sections.append(str(result.approximation_check.verdict))
    else:
        sections.append(_missing(result, ("Laplace",)))
    sections.append("## Calibration\n\n![calibration](calibration.png)")
    sections.append("## MAP coefficients")
    if result.coefficient_table is not None:
        sections += [markdown_table(result.coefficient_table), "![loss surface](loss_surface.png)"]
    else:
        sections.append(_missing(result, ("MAP",)))
    if "nuts_rank" in result.figures:
        sections.append("## NUTS mixing\n\n![rank plot](nuts_rank.png)")
    if "decision_regions" in result.figures:
        sections.append("## Decision regions\n\n![decision regions](decision_regions.png)")
    path = out / "report.md"
    with tempfile.NamedTemporaryFile(
        "w", dir=out, prefix=".report-", suffix=".md", delete=False
    ) as handle:
        handle.write("\n\n".join(sections) + "\n")
    os.replace(handle.name, path)
    return path
