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
from .loo import model_loo


def expected_calibration_error(proba: np.ndarray, codes: np.ndarray, n_bins: int = 10) -> float:
    r"""Top-label ECE: :math:`\sum_b \tfrac{n_b}{n} |\mathrm{acc}_b - \mathrm{conf}_b|`
    over equal-width bins of the predicted probability of the predicted class."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == codes
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def heldout_scores(model, X, y) -> dict[str, float]:
    """Log loss, Brier score (summed over classes), accuracy and expected calibration error."""
    _, codes, _ = validate_scoring_data(model, X, y)
    proba = np.asarray(model.predict_proba(X))
    labels = np.arange(proba.shape[1])
    return {
        "test_log_loss": float(log_loss(codes, proba, labels=labels)),
        "test_brier": float(brier_score_loss(codes, proba, labels=labels, scale_by_half=False)),
        "test_accuracy": float((proba.argmax(axis=1) == codes).mean()),
        "test_ece": expected_calibration_error(proba, codes),
    }


def compare(
    models: Mapping[str, object],
    X,
    y,
    X_test=None,
    y_test=None,
    *,
    sample_weight=None,
    random_state=0,
    method: str = "stacking",
    resolve_loo: bool = True,
) -> pd.DataFrame:
    """Compare fitted models by ELPD-LOO (and held-out scores when test data are given).

    Parameters
    ----------
    models : mapping of name -> fitted model
        Any mix of problogreg estimators, all fitted on (X, y[, sample_weight]);
        a model fitted on other data is refused with a ValueError.
    X, y : the training data the models were fitted on.
    X_test, y_test : optional held-out data.
    sample_weight : array-like of shape (n_samples,), optional
        The training weights: they define each posterior and weight each row's
        leave-one-out score (see :mod:`problogreg.posterior.loo`).
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
    ``loo_method``, ``max_pareto_k`` (after resolution; PSIS methods only; NaN where
    no importance sampling is involved), ``pareto_k_warning`` (True when some
    observation's k still exceeds ArviZ's threshold or a refit failed: that LOO
    estimate is unreliable), ``mcse_elpd`` (Monte Carlo standard error of
    ``elpd_loo``; 0 for exact values), and with test data ``test_log_loss``,
    ``test_brier``, ``test_accuracy``, ``test_ece``.

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
    if (X_test is None) != (y_test is None):
        raise ValueError("Pass both X_test and y_test, or neither.")
    loos = {
        name: model_loo(
            model, X, y, sample_weight, random_state, name=repr(name), resolve=resolve_loo
        )
        for name, model in models.items()
    }
    table = az.compare(loos, method=method, round_to="none")
    table = pd.DataFrame(table).rename(columns={"elpd": "elpd_loo", "p": "p_loo"})
    table["loo_method"] = [loos[name].method for name in table.index]
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
            {name: heldout_scores(models[name], X_test, y_test) for name in table.index}
        ).T
        table = table.join(scores)
    columns = ["rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight"]
    rest = [c for c in table.columns if c not in columns]
    return table[columns + rest]
