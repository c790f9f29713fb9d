r"""Put fitted models side by side: LOO through ArviZ, held-out scores, posterior agreement.

Each model is scored by the expected log pointwise predictive density of
leave-one-out cross-validation (ELPD-LOO) of the *conditional* model
:math:`p(y_i \mid x_i)`, so discriminative and generative models are compared
on the same quantity:

* NUTS (``idata_``): PSIS-LOO of the draws (``az.loo``);
* models with a ``loo(X, y)`` method (Laplace: PSIS-LOO corrected for the
  Gaussian approximation; generative models: exact LOO by closed-form refits);
* a bare MAP fit: approximate LOO by one Newton step from the full-data optimum
  (:func:`approximate_loo`), a point-estimate score with no posterior averaging.

All of them go through ``az.compare`` unrounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._elpd import elpd_from_pointwise
from ._validation import validate_predict_data
from .likelihood import log_proba_from_logits
from .map import MAPLogisticRegression

#: agreement(): a cheap posterior is "good enough" when every mean is within this many
#: reference posterior sds, and every sd ratio within this relative distance of 1.
MEAN_TOLERANCE_SD = 0.1
SD_RATIO_TOLERANCE = 0.1


def encode_labels(model, y) -> np.ndarray:
    """Class codes of ``y`` in ``model.classes_``; unknown labels are an error."""
    y = np.asarray(y)
    codes = np.searchsorted(model.classes_, y)
    codes = np.clip(codes, 0, len(model.classes_) - 1)
    unknown = model.classes_[codes] != y
    if unknown.any():
        raise ValueError(
            f"y contains labels the model was not fitted on: {sorted(set(y[unknown].tolist()))}; "
            f"its classes are {list(model.classes_)}."
        )
    return codes


def approximate_loo(model: MAPLogisticRegression, X, y):
    r"""Approximate leave-one-out ELPD of a point estimate by one Newton step.

    Dropping observation i from the objective and taking one Newton step from
    :math:`\hat\theta` moves its linear predictor by (Woodbury)

    .. math::

        \eta_{-i} = \hat\eta_i + Q_i (I - W_i Q_i)^{-1} g_i,

    where :math:`Q_i` is the covariance of :math:`\eta_i` under
    :math:`N(\hat\theta, H^{-1})`, :math:`W_i = \mathrm{diag}(p_i) - p_i p_i^\top`
    and :math:`g_i = p_i - e_{y_i}` (restricted to the model's free rows).
    For binary models this is :math:`\eta_{-i} = \hat\eta_i + q_i (p_i - y_i)/(1 - w_i q_i)`.
    The score is :math:`\sum_i \log p(y_i \mid x_i, \theta_{-i})`.

    Returns
    -------
    arviz ELPDDataLOO
    """
    X = validate_predict_data(model, X)
    codes = encode_labels(model, y)
    n = len(codes)
    logits = model._class_logits(X)
    proba = np.exp(log_proba_from_logits(logits))
    free = slice(1, None) if model.multiclass_ != "symmetric" else slice(None)
    p = proba[:, free]
    onehot = np.zeros_like(proba)
    onehot[np.arange(n), codes] = 1.0
    gradient = (proba - onehot)[:, free]
    curvature = np.einsum("ik,kl->ikl", p, np.eye(p.shape[1])) - p[:, :, None] * p[:, None, :]
    cov = model._linear_predictor_covariance(X)
    system = np.eye(p.shape[1]) - curvature @ cov
    shift = np.einsum("ikl,il->ik", cov, np.linalg.solve(system, gradient[:, :, None])[..., 0])
    loo_logits = logits.copy()
    loo_logits[:, free] += shift
    elpd_i = log_proba_from_logits(loo_logits)[np.arange(n), codes]
    plug_in = np.log(proba[np.arange(n), codes])
    return elpd_from_pointwise(elpd_i, plug_in, n_samples=1)


def model_loo(model, X, y) -> tuple[object, str]:
    """ELPD-LOO of one fitted model and a description of how it was computed."""
    import arviz as az

    if hasattr(model, "idata_"):
        return az.loo(model.idata_, var_name="y"), "PSIS-LOO of NUTS draws"
    if hasattr(model, "loo"):
        result = model.loo(X, y)
        if getattr(result, "approx_posterior", False):
            return result, "PSIS-LOO of posterior-approximation draws"
        return result, "exact LOO"
    if isinstance(model, MAPLogisticRegression):
        return approximate_loo(model, X, y), "approximate LOO of the point estimate"
    raise TypeError(
        f"Cannot score {type(model).__name__}: it has no idata_, no loo(X, y) method and "
        "is not a problogreg logistic model."
    )


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
    """Log loss, Brier score, accuracy and expected calibration error on (X, y)."""
    codes = encode_labels(model, y)
    proba = np.asarray(model.predict_proba(X))
    n = len(codes)
    onehot = np.zeros_like(proba)
    onehot[np.arange(n), codes] = 1.0
    observed = np.clip(proba[np.arange(n), codes], np.finfo(float).tiny, None)
    return {
        "test_log_loss": float(-np.log(observed).mean()),
        "test_brier": float(((proba - onehot) ** 2).sum(axis=1).mean()),
        "test_accuracy": float((proba.argmax(axis=1) == codes).mean()),
        "test_ece": expected_calibration_error(proba, codes),
    }


def compare(
    models: Mapping[str, object], X, y, X_test=None, y_test=None, *, method: str = "stacking"
) -> pd.DataFrame:
    """Compare fitted models by ELPD-LOO (and held-out scores when test data are given).

    Parameters
    ----------
    models : mapping of name -> fitted model
        Any mix of problogreg estimators, all fitted on (X, y).
    X, y : the training data the models were fitted on.
    X_test, y_test : optional held-out data.
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        Model weights, as in ``az.compare``.

    Returns
    -------
    DataFrame indexed by model name, best first, with columns ``rank``,
    ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff``, ``dse``, ``weight``,
    ``loo_method``, ``max_pareto_k`` (PSIS methods only; NaN where no
    importance sampling is involved), ``pareto_k_warning`` (True when some
    observation's k exceeds ArviZ's threshold: that LOO estimate is unreliable),
    and with test data ``test_log_loss``, ``test_brier``, ``test_accuracy``,
    ``test_ece``.

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
    loos, methods = {}, {}
    for name, model in models.items():
        loos[name], methods[name] = model_loo(model, X, y)
    table = az.compare(loos, method=method, round_to="none")
    table = pd.DataFrame(table).rename(columns={"elpd": "elpd_loo", "p": "p_loo"})
    table["loo_method"] = [methods[name] for name in table.index]
    max_k, warn = [], []
    for name in table.index:
        # Pareto k diagnoses importance sampling; exact and point-estimate LOO have none.
        pareto_k = getattr(loos[name], "pareto_k", None)
        sampled = methods[name].startswith("PSIS")
        k = float(np.max(pareto_k)) if sampled and pareto_k is not None else np.nan
        max_k.append(k)
        warn.append(bool(k > loos[name].good_k) if np.isfinite(k) else False)
    table["max_pareto_k"] = max_k
    table["pareto_k_warning"] = warn
    if X_test is not None:
        scores = pd.DataFrame(
            {name: heldout_scores(models[name], X_test, y_test) for name in table.index}
        ).T
        table = table.join(scores)
    columns = ["rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight"]
    rest = [c for c in table.columns if c not in columns]
    return table[columns + rest]


def _posterior_tree(model_or_tree, draws: int, random_state):
    if hasattr(model_or_tree, "children"):
        return model_or_tree
    if hasattr(model_or_tree, "idata_"):
        return model_or_tree.idata_
    if hasattr(model_or_tree, "sample_posterior"):
        return model_or_tree.sample_posterior(draws=draws, random_state=random_state)
    raise TypeError(
        f"{type(model_or_tree).__name__} has no posterior: pass a DataTree, a fitted "
        "PyMCLogisticRegression or a fitted LaplaceLogisticRegression."
    )


def _flat_draws(tree, var: str) -> tuple[np.ndarray, list[str]]:
    """Draws of ``var`` as (n_draws, n_params) with readable parameter names."""
    array = tree.posterior[var]
    extra = [dim for dim in array.dims if dim not in ("chain", "draw")]
    stacked = array.stack(sample=("chain", "draw")).transpose("sample", *extra)
    values = stacked.values.reshape(stacked.shape[0], -1)
    if not extra:
        return values, [var]
    index = pd.MultiIndex.from_product([array[dim].values for dim in extra])
    names = [f"{var}[{', '.join(map(str, key))}]" for key in index]
    return values, names


@dataclass
class Agreement:
    """How closely posterior ``a`` (an approximation) matches posterior ``b`` (the reference).

    Attributes
    ----------
    table : DataFrame
        Per parameter: ``mean_a``, ``mean_b``, ``sd_a``, ``sd_b``,
        ``mean_diff_sd`` = (mean_a - mean_b) / sd_b and ``sd_ratio`` = sd_a / sd_b.
    kl_divergence, wasserstein : float
        ArviZ's sample-based distances between the joint posteriors.
    good_enough : bool
    verdict : str
    """

    table: pd.DataFrame
    kl_divergence: float
    wasserstein: float
    good_enough: bool
    verdict: str

    def __repr__(self) -> str:
        return f"{self.verdict}\n{self.table.round(3).to_string()}"


def agreement(a, b, *, draws: int = 4000, random_state: int | None = 0) -> Agreement:
    """Compare two posteriors of the same model parameter by parameter.

    Parameters
    ----------
    a, b : fitted models with a posterior (``idata_`` or ``sample_posterior``) or DataTrees
        Conventionally ``a`` is the cheap approximation (Laplace) and ``b`` the
        reference (NUTS).
    draws, random_state : used when a posterior has to be sampled.

    Returns
    -------
    Agreement
        ``good_enough`` when every |mean_diff_sd| <= 0.1 and every sd ratio is
        within 10 % of 1.

    Examples
    --------
    >>> from problogreg import LaplaceLogisticRegression, agreement, datasets
    >>> X, y = datasets.load("two_gaussians", n_samples=2000)
    >>> laplace = LaplaceLogisticRegression().fit(X, y)
    >>> wide = LaplaceLogisticRegression(prior_scale=100.0).fit(X, y)
    >>> agreement(laplace, wide).good_enough  # with n = 2000 the prior hardly matters
    True
    """
    import arviz as az

    tree_a = _posterior_tree(a, draws, random_state)
    tree_b = _posterior_tree(b, draws, random_state)
    rows = []
    for var in ("intercept", "coef"):
        draws_a, names = _flat_draws(tree_a, var)
        draws_b, names_b = _flat_draws(tree_b, var)
        if names != names_b:
            raise ValueError(
                f"The posteriors do not describe the same parameters: {var} has "
                f"{names} in a and {names_b} in b."
            )
        for j, name in enumerate(names):
            rows.append(
                {
                    "parameter": name,
                    "mean_a": draws_a[:, j].mean(),
                    "mean_b": draws_b[:, j].mean(),
                    "sd_a": draws_a[:, j].std(ddof=1),
                    "sd_b": draws_b[:, j].std(ddof=1),
                }
            )
    table = pd.DataFrame(rows).set_index("parameter")
    table["mean_diff_sd"] = (table["mean_a"] - table["mean_b"]) / table["sd_b"]
    table["sd_ratio"] = table["sd_a"] / table["sd_b"]
    worst_mean = float(table["mean_diff_sd"].abs().max())
    worst_sd = float((table["sd_ratio"] - 1).abs().max())
    good = worst_mean <= MEAN_TOLERANCE_SD and worst_sd <= SD_RATIO_TOLERANCE
    var_names = ["intercept", "coef"]
    kl = float(az.kl_divergence(tree_a, tree_b, var_names=var_names, round_to="none"))
    distance = float(az.wasserstein(tree_a, tree_b, var_names=var_names, round_to="none"))
    verdict = (
        f"{'Good enough' if good else 'Not good enough'}: means differ by at most "
        f"{worst_mean:.2f} posterior sd and sds by at most {100 * worst_sd:.0f}% "
        f"(thresholds {MEAN_TOLERANCE_SD} sd, {100 * SD_RATIO_TOLERANCE:.0f}%); "
        f"KL {kl:.3f}, Wasserstein {distance:.3f}."
    )
    return Agreement(
        table=table, kl_divergence=kl, wasserstein=distance, good_enough=good, verdict=verdict
    )
