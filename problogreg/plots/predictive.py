"""Predictions against observed labels: the reliability diagram and the posterior
predictive check, with the probability bins both use."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from ..core.validation import check_random_state, encode_labels, validate_predict_data
from ..posterior.arviz_io import flat_draws, posterior_tree
from ..posterior.draws import DrawPredictor
from ._axes import _figure


def _calibration_target(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The probability a reliability diagram bins, and the class code it is about: P(classes_[1])
    for two classes, the top class's probability (confidence) for more."""
    if proba.shape[1] == 2:
        return proba[:, 1], np.ones(len(proba), dtype=np.intp)
    return proba.max(axis=1), proba.argmax(axis=1)


def _probability_bins(predicted: np.ndarray, n_bins: int) -> tuple[np.ndarray, list[int]]:
    """Equal-width bin of each probability, and the bins that hold any."""
    edges = np.linspace(0, 1, n_bins + 1)
    bins = np.clip(np.digitize(predicted, edges) - 1, 0, n_bins - 1)
    return bins, [b for b in range(n_bins) if np.any(bins == b)]


def calibration(models: Mapping[str, object], X, y, *, n_bins: int = 10, ax=None):
    """Reliability diagram: predicted probability against observed frequency.

    Binary models plot P(classes_[1]); multiclass models plot the probability of
    the predicted class against its accuracy. Bins are equal-width; bins with no
    predictions are skipped.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> fig = calibration({"map": plr.MAPLogisticRegression().fit(X, y)}, X, y)
    >>> fig.axes[0].get_ylabel()
    'observed frequency'
    """
    fig, ax = _figure(ax)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for name, model in models.items():
        proba = np.asarray(model.predict_proba(X))
        predicted, target = _calibration_target(proba)
        hit = encode_labels(model.classes_, y) == target
        bins, used = _probability_bins(predicted, n_bins)
        ax.plot(
            [predicted[bins == b].mean() for b in used],
            [hit[bins == b].mean() for b in used],
            marker="o",
            label=name,
        )
    binary = all(len(m.classes_) == 2 for m in models.values())
    ax.set_xlabel("predicted probability" if binary else "confidence (top-class probability)")
    ax.set_ylabel("observed frequency" if binary else "accuracy")
    ax.set_title("Calibration")
    ax.legend(fontsize=8)
    return fig


def _linear_draws(model, draws: int, random_state) -> DrawPredictor:
    """A DrawPredictor over ``draws`` posterior draws of a model with linear logits."""
    tree = posterior_tree(model, draws=draws, random_state=random_state)
    if "coef" not in tree.posterior:
        raise ValueError(
            f"ppc needs posterior draws of coefficients; {type(model).__name__} has none (its "
            "logit is not linear in x). Use LaplaceLogisticRegression, PyMCLogisticRegression "
            "or SharedCovarianceGaussian."
        )
    coef, _ = flat_draws(tree, "coef")
    intercept, _ = flat_draws(tree, "intercept")
    n_classes, n_features = len(model.classes_), model.n_features_in_
    coef = coef[:draws].reshape(len(coef[:draws]), -1, n_features)
    intercept = intercept[:draws]
    if n_classes == 2:  # the estimators store the row of classes_[1] only
        intercept = np.concatenate([np.zeros_like(intercept), intercept], axis=1)
        coef = np.concatenate([np.zeros_like(coef), coef], axis=1)
    return DrawPredictor.linear(intercept, coef)


def _interval_plot(ax, x, replicated, observed, prob, label):
    """Replicated statistics (S, m) as median and ``prob`` interval, the observed as points."""
    lower, median, upper = np.quantile(replicated, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
    ax.errorbar(
        x,
        median,
        yerr=[median - lower, upper - median],
        fmt="o",
        color="tab:blue",
        alpha=0.6,
        capsize=3,
        label=f"replicated: median, {prob:.0%} interval",
    )
    ax.plot(x, observed, "D", color="black", label=label)


def ppc(model, X, y=None, *, trials=None, draws=1000, n_bins=8, prob=0.94, random_state=0):
    r"""Posterior predictive check: the data against data replicated from the posterior.

    For S posterior draws :math:`\theta_s`, replicated labels :math:`\tilde y^{(s)}_i
    \sim \operatorname{Categorical}(p(\cdot \mid x_i, \theta_s))` (or successes
    :math:`\tilde s^{(s)}_g \sim \operatorname{Binomial}(n_g, p(x_g, \theta_s))` for
    grouped binomial data). Left: the count of each class (binomial: each group's
    proportion of successes, groups ordered by their fitted probability), observed
    against the replicated distribution. Right: binned calibration — rows binned by
    their posterior-mean probability (of ``classes_[1]``; the top class for more
    than two classes), the observed frequency in each bin against the frequencies
    of the replicated data sets. Observed points outside the replicated intervals
    are misfit the model cannot produce.

    Parameters
    ----------
    model : fitted Laplace, NUTS or LDA model, or a FormulaModel of one
    X, y : the data (usually the training data); ``y`` the successes with ``trials``.
        For a FormulaModel, X is the DataFrame and the formula gives the response.
    trials : array-like, optional
        Trials per row of grouped binomial data.
    draws : int, default=1000
    n_bins : int, default=8
    prob : float, default=0.94
    random_state : None, int or numpy Generator, default=0

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> fig = ppc(plr.LaplaceLogisticRegression().fit(X, y), X, y, draws=200)
    >>> fig.axes[1].get_ylabel()
    'observed frequency'
    """
    if hasattr(model, "design_"):  # a FormulaModel: the DataFrame holds the response too
        response = model.response(X)
        X, y, trials = model.design_matrix(X), response.y, response.trials
        model = model.estimator_
    if y is None:
        raise ValueError("Pass y, the observed labels (or successes with trials=...).")
    X_arr = validate_predict_data(model, X)
    rng = check_random_state(random_state)
    predictor = _linear_draws(model, draws, random_state)
    proba = np.concatenate(
        [np.exp(log_proba) for _, log_proba in predictor.log_proba_blocks(X_arr)], axis=1
    )  # (S, n, K)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    mean_proba = proba.mean(axis=0)
    predicted, target = _calibration_target(mean_proba)
    if trials is None:
        codes = encode_labels(model.classes_, y)
        replicated = predictor.sample_labels(X_arr, rng)
        classes = np.arange(len(model.classes_))
        counts = (replicated[..., None] == classes).sum(axis=1)
        _interval_plot(
            left, classes, counts, np.bincount(codes, minlength=len(classes)), prob, "observed"
        )
        left.set_xticks(classes, [str(c) for c in model.classes_])
        left.set_xlabel("class")
        left.set_ylabel("count")
        hits, replicated_hits, size = codes == target, replicated == target, np.ones(len(codes))
    else:
        successes = np.asarray(y, dtype=float)
        size = np.asarray(trials, dtype=float)
        replicated_hits = rng.binomial(size.astype(np.int64), proba[..., 1])
        hits = successes
        order = np.argsort(predicted)
        position = np.arange(len(order))
        _interval_plot(
            left,
            position,
            replicated_hits[:, order] / size[order],
            successes[order] / size[order],
            prob,
            "observed",
        )
        left.set_xlabel("group, by fitted probability")
        left.set_ylabel("proportion of successes")
    bins, used = _probability_bins(predicted, n_bins)
    in_bin = [bins == b for b in used]
    _interval_plot(
        right,
        [np.average(predicted[m], weights=size[m]) for m in in_bin],
        np.stack([replicated_hits[:, m].sum(axis=1) / size[m].sum() for m in in_bin], axis=1),
        [hits[m].sum() / size[m].sum() for m in in_bin],
        prob,
        "observed",
    )
    right.plot([0, 1], [0, 1], color="grey", linestyle=":")
    right.set_xlabel("posterior-mean probability (binned)")
    right.set_ylabel("observed frequency")
    left.set_title("Posterior predictive check")
    right.set_title("Binned calibration against replicated data")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
