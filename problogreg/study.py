"""The model-comparison study: every model on one dataset, compared, with a report.

:func:`run_study` fits MAP, Laplace, NUTS, the shared-covariance Gaussian (LDA)
and Naive Bayes on a training split, compares them by ELPD-LOO and on the
held-out split, checks the diagnostics (R-hat, ESS, divergences, Pareto k), and
measures how well the Laplace posterior matches NUTS; :mod:`problogreg.report`
writes the tables as CSV, the figures as PNG and a Markdown report linking them.

Bad input is found before any model is fitted. Data no model can use (labels,
too few samples to hold out a test split) raise :class:`StudyInputError`; a
model that refuses the training split (LDA on a constant column, say) becomes a
row of the comparison table with the reason in ``not_fitted_because``, and the
others still make the report, with the sections and figures that can be drawn
without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from . import plots
from .core.validation import format_label, one_line, validate_fit_data
from .evaluation.agreement import agreement
from .evaluation.compare import compare
from .models.map import MAPLogisticRegression

#: Every model of a study, in the order they are fitted: the closed-form and
#: cheap ones first, so that a model that refuses the data is known before NUTS runs.
MODEL_NAMES = ("MAP", "LDA", "NaiveBayes", "Laplace", "NUTS")

#: Models that start from the MAP fit: when MAP fails, they fail for the same reason.
NEEDS_MAP = ("Laplace", "NUTS")


class StudyInputError(ValueError):
    """The data or the report directory cannot make a study; a one-line reason for users."""


@dataclass(frozen=True)
class StudySettings:
    """Sampling budget of a study, and which models it fits.

    ``quick`` trades Monte Carlo precision for time: fewer draws and chains.
    ``models`` is a subset of :data:`MODEL_NAMES` (at least two). ``resolve_loo``
    as in :func:`~problogreg.evaluation.compare.compare`.
    """

    draws: int = 1000
    tune: int = 500
    chains: int = 4
    test_size: float = 0.3
    seed: int = 0
    models: tuple[str, ...] = MODEL_NAMES
    resolve_loo: bool = True

    @classmethod
    def quick(cls, seed: int = 0) -> StudySettings:
        return cls(draws=400, tune=300, chains=2, seed=seed)


@dataclass
class StudyResult:
    """Everything a study computed; ``figures`` maps file stems to matplotlib Figures.

    ``models`` holds the fitted models only; ``failures`` maps each model that
    could not be fitted to the reason. ``agreement`` (needs Laplace and NUTS),
    ``approximation_check`` (Laplace) and ``coefficient_table`` (MAP) are None
    when a model they need is missing. ``notes`` are remarks on the data and the
    split (e.g. a class with one sample kept in the training split).
    """

    name: str
    X_train: pd.DataFrame
    y_train: pd.Series
    models: dict
    timings: dict
    comparison: pd.DataFrame
    diagnostics: pd.DataFrame
    agreement: object | None
    approximation_check: object | None
    coefficient_table: pd.DataFrame | None
    figures: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def _models(settings: StudySettings, progressbar: bool) -> dict[str, Callable[[], object]]:
    import problogreg as plr

    builders = {
        "MAP": lambda: MAPLogisticRegression(),
        "LDA": lambda: plr.SharedCovarianceGaussian(),
        "NaiveBayes": lambda: plr.NaiveBayes(),
        "Laplace": lambda: plr.LaplaceLogisticRegression(),
        "NUTS": lambda: plr.PyMCLogisticRegression(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            random_state=settings.seed,
            progressbar=progressbar,
        ),
    }
    unknown = sorted(set(settings.models) - set(builders))
    if unknown or len(set(settings.models)) < 2:
        raise ValueError(
            f"StudySettings.models must name at least two of {list(MODEL_NAMES)}; got "
            f"{list(settings.models)}."
        )
    return {name: builders[name] for name in MODEL_NAMES if name in settings.models}


def check_study_data(X: pd.DataFrame, y: pd.Series) -> None:
    """What every model needs of the whole data set: finite numeric X, one label per row,
    at least two classes (the checks of ``fit``).

    Raises
    ------
    StudyInputError
    """
    try:
        validate_fit_data(MAPLogisticRegression(), X, y)
    except ValueError as err:
        raise StudyInputError(one_line(err)) from err


def split_data(X: pd.DataFrame, y: pd.Series, settings: StudySettings):
    """Training and held-out split, stratified by class where possible.

    A class with a single sample cannot be both fitted and tested: it is kept in
    the training split, so that every held-out label is one the models know.

    Returns
    -------
    X_train, X_test, y_train, y_test, notes : the splits and remarks for the report

    Raises
    ------
    StudyInputError
        When too few samples are left to hold any out.
    """
    notes = []
    counts = y.value_counts()
    rare = counts.index[counts < 2]
    kept = y.isin(rare).to_numpy()
    for label in rare:
        notes.append(
            f"class {format_label(label)} has a single sample; it is kept in the training "
            "split and not scored on the held-out split"
        )
    X_rest, y_rest = X[~kept], y[~kept]
    if y_rest.nunique() < 1 or len(y_rest) < 2:
        raise StudyInputError(
            f"too few samples to hold out a test split: {len(y)} samples, and no class has "
            "two; a study needs more data"
        )
    stratify = y_rest if y_rest.nunique() >= 2 else None
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X_rest,
            y_rest,
            test_size=settings.test_size,
            random_state=settings.seed,
            stratify=stratify,
        )
    except ValueError:  # too few samples for every class in both splits
        X_train, X_test, y_train, y_test = train_test_split(
            X_rest, y_rest, test_size=settings.test_size, random_state=settings.seed
        )
    unseen = ~y_test.isin(pd.unique(y_train)).to_numpy()
    if kept.any() or unseen.any():
        X_train = pd.concat([X_train, X_test[unseen], X[kept]])
        y_train = pd.concat([y_train, y_test[unseen], y[kept]])
        X_test, y_test = X_test[~unseen], y_test[~unseen]
    if len(y_test) == 0:
        raise StudyInputError(f"too few samples to hold out a test split ({len(y)} samples)")
    if y_train.nunique() < 2:
        raise StudyInputError(
            "the training split has a single class; a study needs at least two classes "
            "with two or more samples"
        )
    return X_train, X_test, y_train, y_test, notes


#: Models that need every feature to vary (their Gaussian class densities need a spread).
NEEDS_SPREAD = ("LDA", "NaiveBayes")

#: Appended to a model's own error: the study fits every model with its defaults.
STUDY_ADVICE = (
    "(The study fits each model with its default settings; to include this model, "
    "change the data, e.g. leave out columns with --drop.)"
)


def precheck_models(X_train: pd.DataFrame, labels) -> dict[str, str]:
    """Reasons, found before any fitting, why some of the models ``labels`` cannot be
    fitted on the training split: constant columns rule out LDA and Naive Bayes."""
    constant = [str(c) for c in X_train.columns if X_train[c].nunique() <= 1]
    if not constant:
        return {}
    return {
        label: (
            f"columns {constant} are constant in the training split, and {label} needs "
            "every feature to vary (a Gaussian with no spread); leave them out "
            f"(on the command line: --drop {constant[0]})"
        )
        for label in labels
        if label in NEEDS_SPREAD
    }


def _fit_models(builders, X_train, y_train, log):
    """Fit every model in turn; a model that refuses the data is recorded, not fatal."""
    models, timings = {}, {}
    failures = precheck_models(X_train, builders)
    for label, why in failures.items():
        log(f"{label} cannot be fitted: {why}")
    for step, (label, build) in enumerate(builders.items(), start=1):
        if label in failures:
            log(f"[{step}/{len(builders)}] {label} skipped (see above)")
            continue
        if label in NEEDS_MAP and "MAP" in failures:
            failures[label] = f"it starts from the MAP fit, which failed: {failures['MAP']}"
            log(f"[{step}/{len(builders)}] {label} skipped: the MAP fit failed")
            continue
        log(f"[{step}/{len(builders)}] fitting {label} ...")
        start = time.perf_counter()
        try:
            model = build().fit(X_train, y_train)
            if hasattr(model, "sample_posterior") and label in ("LDA", "NaiveBayes"):
                # Their leave-one-out needs the conjugate posterior, which can be
                # unavailable where the maximum-likelihood fit stands (constant columns).
                model.sample_posterior(draws=1, chains=1, random_state=0)
        except ValueError as err:
            failures[label] = f"{one_line(err)} {STUDY_ADVICE}"
            log(f"      {label} cannot be fitted: {failures[label]}")
            continue
        models[label] = model
        timings[label] = time.perf_counter() - start
        log(f"      {label} done in {timings[label]:.1f} s")
    return models, timings, failures


def _loo_rows(loo_table: pd.DataFrame) -> list[tuple]:
    """A row per model whose LOO began as PSIS: that estimate's max Pareto k against the
    threshold it was flagged against (below 0.7 for fewer than 2200 draws), and whether
    it was kept or replaced (by refits or K-fold, whose own k are no PSIS diagnostic: a
    NUTS refit carries k = 0). Exact and point-estimate LOO involve no importance
    sampling and get no row."""
    rows = []
    for name, model in loo_table.iterrows():
        k = model["psis_max_pareto_k"]
        if not np.isfinite(k):
            continue
        if model["n_refits"] == 0:
            label, resolution = f"{name} max Pareto k (PSIS-LOO)", "none: PSIS-LOO kept"
        else:
            label = f"{name} max Pareto k (PSIS-LOO, before resolution)"
            resolution = f"resolved by {model['loo_method']}"
        if model["pareto_k_warning"]:
            resolution += "; the estimate is unreliable (pareto_k_warning)"
        rows.append((label, k, f"< {model['psis_pareto_k_threshold']:.2f}", resolution))
    return rows


def _diagnostics(models: dict, loo_table: pd.DataFrame, check) -> pd.DataFrame:
    """Sampling and importance-sampling diagnostics against their targets; ``resolution``
    says what became of each PSIS-LOO estimate (empty for the other rows)."""
    rows = []
    if "NUTS" in models:
        sampled = models["NUTS"].diagnostics_  # sampled parameters (no fixed reference rows)
        rows += [
            ("NUTS max R-hat", sampled["max_r_hat"], "< 1.01", ""),
            ("NUTS min bulk ESS", sampled["min_ess_bulk"], ">= 400", ""),
            ("NUTS divergences", sampled["n_divergent"], "0", ""),
        ]
    if check is not None:
        target = f"< {check.threshold:.2f}"
        rows.append(("Laplace importance-sampling Pareto k", float(check.pareto_k), target, ""))
    rows += _loo_rows(loo_table)
    columns = ["diagnostic", "value", "target", "resolution"]
    return pd.DataFrame(rows, columns=columns).set_index("diagnostic")


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

    The data are checked before any fitting (:func:`check_study_data`,
    :func:`split_data`). A model that refuses the training split is reported
    in ``failures`` and as a row of the comparison table; the study goes on
    with the others.

    Parameters
    ----------
    X, y : features and labels
    name : a label for the report (dataset name or file)
    settings : StudySettings, default StudySettings()
    log : receives one line per step (progress)
    progressbar : show PyMC's sampling progress bar

    Raises
    ------
    StudyInputError
        For data no study can use, or when fewer than two models can be fitted.
    """
    settings = settings or StudySettings()
    builders = _models(settings, progressbar)
    check_study_data(X, y)
    X_train, X_test, y_train, y_test, notes = split_data(X, y, settings)
    for note in notes:
        log(f"note: {note}")
    models, timings, failures = _fit_models(builders, X_train, y_train, log)
    if len(models) < 2:
        reasons = "; ".join(f"{label}: {why}" for label, why in failures.items())
        raise StudyInputError(f"fewer than two models can be fitted on these data ({reasons})")
    log("comparing by leave-one-out and on the held-out split ...")
    table = compare(models, X_train, y_train, X_test, y_test, resolve_loo=settings.resolve_loo)
    table.insert(0, "fit_seconds", [timings[m] for m in table.index])
    if failures:
        failed = pd.DataFrame({"not_fitted_because": list(failures.values())}, index=list(failures))
        table = pd.concat([table, failed])
        table["not_fitted_because"] = table["not_fitted_because"].fillna("")
    check = match = None
    if "Laplace" in models:
        check = models["Laplace"].check_approximation(X_train, y_train, random_state=settings.seed)
    if "Laplace" in models and "NUTS" in models:
        match = agreement(models["Laplace"], models["NUTS"], random_state=settings.seed)
    result = StudyResult(
        name=name,
        X_train=X_train,
        y_train=y_train,
        models=models,
        timings=timings,
        comparison=table,
        diagnostics=_diagnostics(models, table, check),
        agreement=match,
        approximation_check=check,
        coefficient_table=models["MAP"].summary() if "MAP" in models else None,
        failures=failures,
        notes=notes,
    )
    log("drawing figures ...")
    result.figures = _figures(result)
    return result


def fitted_rows(table: pd.DataFrame) -> pd.DataFrame:
    if "not_fitted_because" not in table.columns:
        return table
    return table[table["not_fitted_because"] == ""].drop(columns="not_fitted_because")


def _figures(result: StudyResult) -> dict:
    """The figures the fitted models allow (each names the models it needs)."""
    models, X, y = result.models, result.X_train, result.y_train
    figures = {
        "comparison": plots.comparison(fitted_rows(result.comparison)),
        "calibration": plots.calibration(models, X, y),
    }
    if "Laplace" in models and "NUTS" in models:
        figures["forest"] = plots.coefficient_forest(
            {m: models[m] for m in ("Laplace", "NUTS")}, feature_scale=X.std(axis=0).to_numpy()
        )
        figures["laplace_vs_nuts"] = plots.posterior_overlay(models["Laplace"], models["NUTS"])
    if "NUTS" in models:
        figures["nuts_rank"] = plots.rank(models["NUTS"])
    if "MAP" in models:
        figures["loss_surface"] = plots.loss_surface(models["MAP"], X, y)
    if X.shape[1] == 2 and "Laplace" in models:
        figures["decision_regions"] = plots.decision_regions(models["Laplace"], X, y)
    return figures
