r"""Put fitted models side by side: ELPD-LOO through ArviZ and held-out scores.

Each model is scored by the expected log pointwise predictive density of
leave-one-out cross-validation (ELPD-LOO) of the *conditional* model
:math:`p(y_i \mid x_i)`, so discriminative and generative models are compared
on the same quantity (see :mod:`problogreg.evaluation.loo` for how each kind of
model is scored). All of them go through ``az.compare`` unrounded.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss

from ..core.validation import validate_scoring_data
from .binomial import binomial_test_rows
from .loo import model_loo


def expected_calibration_error(
    proba: np.ndarray, codes: np.ndarray, n_bins: int = 10, sample_weight=None
) -> float:
    r"""Top-label ECE: :math:`\sum_b \tfrac{n_b}{n} |\mathrm{acc}_b - \mathrm{conf}_b|`
    over equal-width bins of the predicted probability of the predicted class
    (:math:`n_b`, and the means in a bin, weighted by ``sample_weight`` when given)."""
    weights = np.ones(len(codes)) if sample_weight is None else np.asarray(sample_weight)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == codes
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = (bins == b) & (weights > 0)
        if not in_bin.any():
            continue
        share = weights[in_bin].sum() / weights.sum()
        accuracy = np.average(correct[in_bin], weights=weights[in_bin])
        ece += share * abs(accuracy - np.average(confidence[in_bin], weights=weights[in_bin]))
    return float(ece)


def heldout_scores(model, X, y, trials=None) -> dict[str, float]:
    """Log loss, Brier score (summed over classes), accuracy and expected calibration error;
    with ``trials`` (binomial counts, ``y`` the successes) the log loss is per group and
    the others are those of the trials (see
    :func:`~problogreg.evaluation.binomial.binomial_test_rows`)."""
    if trials is None:
        _, codes, _ = validate_scoring_data(model, X, y)
        proba = np.asarray(model.predict_proba(X))
        counts = None
        test_log_loss = float(log_loss(codes, proba, labels=np.arange(proba.shape[1])))
    else:
        proba, codes, counts, test_log_loss = binomial_test_rows(model, X, y, trials)
    labels = np.arange(proba.shape[1])
    brier = brier_score_loss(codes, proba, labels=labels, sample_weight=counts, scale_by_half=False)
    return {
        "test_log_loss": test_log_loss,
        "test_brier": float(brier),
        "test_accuracy": float(np.average(proba.argmax(axis=1) == codes, weights=counts)),
        "test_ece": expected_calibration_error(proba, codes, sample_weight=counts),
    }


def _scoring_data(model, X, y, trials, pair: str):
    """``(estimator, X, y, trials)`` to score ``model`` on: a formula model
    (:class:`~problogreg.formula.FormulaModel`) rebuilds its design and response
    (labels, or successes and trials) from the data frame ``X``."""
    if hasattr(model, "_scoring_args"):
        X, y, counts = model._scoring_args(X)
        return model._fitted(), X, y, counts.get("trials")
    if y is None:
        raise ValueError(
            f"Pass both {pair}: a model without a formula needs its labels (or its successes, "
            "with the trials); only formula models read them from the data frame."
        )
    return model, X, y, trials


def compare(
    models: Mapping[str, object],
    X,
    y=None,
    X_test=None,
    y_test=None,
    *,
    sample_weight=None,
    trials=None,
    trials_test=None,
    random_state=0,
    method: str = "stacking",
    resolve_loo: bool = True,
) -> pd.DataFrame:
    """Compare fitted models by ELPD-LOO (and held-out scores when test data are given).

    Parameters
    ----------
    models : mapping of name -> fitted model
        Any mix of problogreg estimators, all fitted on (X, y[, sample_weight]);
        a model fitted on other data is refused with a ValueError. Formula models
        (:func:`~problogreg.from_formula`) were fitted on the data frame ``X`` and
        read their design and response from it (``y`` and ``trials`` are then unused).
    X, y : the training data the models were fitted on.
    X_test, y_test : optional held-out data.
    sample_weight : array-like of shape (n_samples,), optional
        The training weights: they define each posterior and weight each row's
        leave-one-out score (see :mod:`problogreg.posterior.loo`).
    trials, trials_test : array-like, optional
        For fits on binomial counts (``y``, ``y_test`` the successes): the unit of
        leave-one-out and of the held-out log loss is the group (see
        :mod:`problogreg.evaluation.binomial`).
    random_state : None, int or numpy Generator, default=0
        Seeds the draws of models whose LOO samples (Laplace); the default makes
        the table the same at every call.
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        Model weights, as in ``az.compare``.
    resolve_loo : bool, default=True
        Replace leave-one-out values that their diagnostic flags (Pareto k above
        the threshold; high leverage for a point estimate) by exact refits, or by
        K-fold cross-validation when too many rows are flagged
        (:mod:`problogreg.posterior.refit_loo`); ``loo_method`` says which was used.
        False: the one-shot estimates, warnings and all.

    Returns
    -------
    DataFrame indexed by model name, best first, with columns ``rank``,
    ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff``, ``dse``, ``weight``,
    ``loo_method``, ``n_refits`` (refits or folds behind the estimate; 0 when the
    one-shot estimate was kept), ``psis_max_pareto_k`` (the largest Pareto k of the
    model's PSIS-LOO, before refits or K-fold replaced any of it, ``loo_method``
    saying why; NaN for models scored without PSIS), ``psis_pareto_k_threshold``
    (the threshold those k were flagged against, min(1 - 1/log10 S, 0.7) for S
    draws), ``max_pareto_k`` (after resolution; PSIS methods only; NaN where no
    importance sampling is involved; a NUTS refit carries k = 0),
    ``pareto_k_warning`` (True when some observation's k still exceeds ArviZ's
    threshold or a refit failed: that LOO estimate is unreliable), ``mcse_elpd``
    (Monte Carlo standard error of ``elpd_loo``; 0 for exact values), and with test
    data ``test_log_loss``, ``test_brier``, ``test_accuracy``, ``test_ece``.

    Examples
    --------
    >>> from problogreg import MAPLogisticRegression, NaiveBayes, compare, datasets
    >>> X, y = datasets.load("two_gaussians", n_samples=100)
    >>> models = {"map": MAPLogisticRegression().fit(X, y), "nb": NaiveBayes().fit(X, y)}
    >>> table = compare(models, X, y)
    >>> sorted(table.index), float(table["weight"].sum())
    (['map', 'nb'], 1.0)
    """
    import arviz as az

    if len(models) < 2:
        raise ValueError("compare() needs at least two fitted models, as a {name: model} dict.")
    if X_test is None and y_test is not None:
        raise ValueError("Pass both X_test and y_test, or neither.")
    loos = {}
    for name, model in models.items():
        estimator, X_fit, y_fit, trials_fit = _scoring_data(model, X, y, trials, "X and y")
        loos[name] = model_loo(
            estimator,
            X_fit,
            y_fit,
            sample_weight,
            random_state,
            name=repr(name),
            resolve=resolve_loo,
            trials=trials_fit,
        )
    table = az.compare(loos, method=method, round_to="none")
    table = pd.DataFrame(table).rename(columns={"elpd": "elpd_loo", "p": "p_loo"})
    table["loo_method"] = [loos[name].method for name in table.index]
    table["n_refits"] = [loos[name].n_refits for name in table.index]
    table["psis_max_pareto_k"] = [
        np.nan if loos[name].psis_pareto_k is None else float(np.nanmax(loos[name].psis_pareto_k))
        for name in table.index
    ]
    table["psis_pareto_k_threshold"] = [
        np.nan if loos[name].psis_good_k is None else float(loos[name].psis_good_k)
        for name in table.index
    ]
    # Pareto k diagnoses importance sampling; exact and point-estimate LOO have none.
    sampled = [loos[name].n_samples > 1 for name in table.index]
    table["max_pareto_k"] = [
        float(loos[name].pareto_k.max()) if is_sampled else np.nan
        for name, is_sampled in zip(table.index, sampled, strict=True)
    ]
    table["pareto_k_warning"] = [
        bool(loos[name].warning) and is_sampled
        for name, is_sampled in zip(table.index, sampled, strict=True)
    ]
    table["mcse_elpd"] = [loos[name].mcse_elpd for name in table.index]
    if X_test is not None:
        scores = pd.DataFrame(
            {
                name: heldout_scores(
                    *_scoring_data(models[name], X_test, y_test, trials_test, "X_test and y_test")
                )
                for name in table.index
            }
        ).T
        table = table.join(scores)
    columns = ["rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight"]
    rest = [c for c in table.columns if c not in columns]
    return table[columns + rest]
