"""The model-comparison study: every model on one dataset, compared, with a report.

:func:`run_study` fits MAP, Laplace, NUTS, the shared-covariance Gaussian (LDA)
and Naive Bayes on a training split, compares them by ELPD-LOO and on the
held-out split, checks the diagnostics (R-hat, ESS, divergences, Pareto k), and
measures how well the Laplace posterior matches NUTS. :func:`write_report`
writes the tables as CSV, the figures as PNG and a Markdown report linking them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from . import plots
from .evaluation.agreement import agreement
from .evaluation.compare import compare
from .models.map import MAPLogisticRegression


@dataclass(frozen=True)
class StudySettings:
    """Sampling budget of a study.

    ``quick`` trades Monte Carlo precision for time: fewer draws and chains.
    """

    draws: int = 1000
    tune: int = 500
    chains: int = 4
    test_size: float = 0.3
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> StudySettings:
        return cls(draws=400, tune=300, chains=2, seed=seed)


@dataclass
class StudyResult:
    """Everything a study computed; ``figures`` maps file stems to matplotlib Figures."""

    name: str
    X_train: pd.DataFrame
    y_train: pd.Series
    models: dict
    timings: dict
    comparison: pd.DataFrame
    diagnostics: pd.DataFrame
    agreement: object
    approximation_check: object
    coefficient_table: pd.DataFrame
    figures: dict = field(default_factory=dict)


def _models(settings: StudySettings, progressbar: bool) -> dict[str, Callable[[], object]]:
    import problogreg as plr

    return {
        "MAP": lambda: MAPLogisticRegression(),
        "Laplace": lambda: plr.LaplaceLogisticRegression(),
        "NUTS": lambda: plr.PyMCLogisticRegression(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            random_state=settings.seed,
            progressbar=progressbar,
        ),
        "LDA": lambda: plr.SharedCovarianceGaussian(),
        "NaiveBayes": lambda: plr.NaiveBayes(),
    }


def _diagnostics(nuts, loo_table: pd.DataFrame, check) -> pd.DataFrame:
    sampled = nuts.diagnostics_  # over the sampled parameters (no fixed reference rows)
    rows = [
        ("NUTS max R-hat", sampled["max_r_hat"], "< 1.01"),
        ("NUTS min bulk ESS", sampled["min_ess_bulk"], ">= 400"),
        ("NUTS divergences", sampled["n_divergent"], "0"),
        ("Laplace importance-sampling Pareto k", float(check.pareto_k), "< 0.7"),
    ]
    rows += [
        (f"{name} max Pareto k (LOO)", k, "< 0.7")
        for name, k in loo_table["max_pareto_k"].items()
        if np.isfinite(k)
    ]
    return pd.DataFrame(rows, columns=["diagnostic", "value", "target"]).set_index("diagnostic")


def run_study(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    name: str,
    settings: StudySettings | None = None,
    log: Callable[[str], None] = print,
    progressbar: bool = False,
) -> StudyResult:
    """Fit every model on a training split and compare them.

    Parameters
    ----------
    X, y : features and labels
    name : a label for the report (dataset name or file)
    settings : StudySettings, default StudySettings()
    log : receives one line per step (progress)
    progressbar : show PyMC's sampling progress bar
    """
    settings = settings or StudySettings()
    stratify = y if y.value_counts().min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=settings.test_size, random_state=settings.seed, stratify=stratify
    )
    builders = _models(settings, progressbar)
    models, timings = {}, {}
    for step, (label, build) in enumerate(builders.items(), start=1):
        log(f"[{step}/{len(builders)}] fitting {label} ...")
        start = time.perf_counter()
        models[label] = build().fit(X_train, y_train)
        timings[label] = time.perf_counter() - start
        log(f"      {label} done in {timings[label]:.1f} s")
    log("comparing by leave-one-out and on the held-out split ...")
    table = compare(models, X_train, y_train, X_test, y_test)
    table.insert(0, "fit_seconds", [timings[m] for m in table.index])
    check = models["Laplace"].check_approximation(X_train, y_train, random_state=settings.seed)
    match = agreement(models["Laplace"], models["NUTS"], random_state=settings.seed)
    result = StudyResult(
        name=name,
        X_train=X_train,
        y_train=y_train,
        models=models,
        timings=timings,
        comparison=table,
        diagnostics=_diagnostics(models["NUTS"], table, check),
        agreement=match,
        approximation_check=check,
        coefficient_table=models["MAP"].summary(),
    )
    log("drawing figures ...")
    result.figures = _figures(result)
    return result


def _figures(result: StudyResult) -> dict:
    models, X, y = result.models, result.X_train, result.y_train
    figures = {
        "comparison": plots.comparison(result.comparison),
        "calibration": plots.calibration(models, X, y),
        "forest": plots.coefficient_forest(
            {m: models[m] for m in ("Laplace", "NUTS")}, feature_scale=X.std(axis=0).to_numpy()
        ),
        "laplace_vs_nuts": plots.posterior_overlay(models["Laplace"], models["NUTS"]),
        "nuts_rank": plots.rank(models["NUTS"]),
        "loss_surface": plots.loss_surface(models["MAP"], X, y),
    }
    if X.shape[1] == 2:
        figures["decision_regions"] = plots.decision_regions(models["Laplace"], X, y)
    return figures


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table of ``frame`` (index included) with numbers rounded to ``digits``."""

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.{digits}f}" if np.isfinite(value) else ""
        return str(value)

    index_names = [str(n) if n is not None else "" for n in frame.index.names]
    header = [*index_names, *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in frame.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        lines.append("| " + " | ".join([*map(str, keys), *map(cell, row.tolist())]) + " |")
    return "\n".join(lines)


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
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        return "\n\n".join(
            [
                f"Model comparison on {result.name} (ELPD-LOO on the training split; test_* "
                "on the held-out split)",
                result.comparison[columns].round(3).to_string(),
                "Diagnostics",
                result.diagnostics.round(3).to_string(),
                "Laplace vs NUTS",
                result.agreement.verdict,
                "Laplace approximation check",
                str(result.approximation_check.verdict),
            ]
        )


def write_report(result: StudyResult, out: Path) -> Path:
    """Write report.md, the figures (PNG) and the tables (CSV) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "comparison": result.comparison,
        "diagnostics": result.diagnostics,
        "laplace_vs_nuts": result.agreement.table,
        "map_coefficients": result.coefficient_table,
    }
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
        markdown_table(result.comparison.drop(columns=["diag_diff", "diag_elpd"], errors="ignore")),
        "![comparison](comparison.png)",
        "## Diagnostics",
        markdown_table(result.diagnostics),
        "## Laplace vs NUTS",
        result.agreement.verdict,
        markdown_table(result.agreement.table),
        "![marginals](laplace_vs_nuts.png)\n\n![forest](forest.png)",
        "## Laplace approximation check",
        str(result.approximation_check.verdict),
        "## Calibration\n\n![calibration](calibration.png)",
        "## MAP coefficients",
        markdown_table(result.coefficient_table),
        "![loss surface](loss_surface.png)",
        "## NUTS mixing\n\n![rank plot](nuts_rank.png)",
    ]
    if "decision_regions" in result.figures:
        sections.append("## Decision regions\n\n![decision regions](decision_regions.png)")
    path = out / "report.md"
    path.write_text("\n\n".join(sections) + "\n")
    return path
