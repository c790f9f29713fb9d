"""Figures for model comparison studies; every function returns a matplotlib Figure.

ArviZ figures (forest, comparison, trace, rank) go through arviz-plots and are
returned as the matplotlib Figure behind its PlotCollection.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from ..core.likelihood import SoftmaxLikelihood
from ..core.objective import PosteriorObjective
from ..core.validation import (
    check_random_state,
    encode_labels,
    feature_names,
    validate_predict_data,
    validate_training_data,
)
from ..posterior.arviz_io import flat_draws, posterior_tree
from ..posterior.draws import DrawPredictor
from ..posterior.gaussian import laplace_posterior


def _figure(ax):
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
        return fig, ax
    return ax.figure, ax


def _arviz_figure(plot_collection):
    return plot_collection.viz["figure"].item()


def decision_regions(model, X, y, *, ax=None, resolution: int = 150, prob: float = 0.94):
    """Predicted class probabilities over a 2-D feature plane, with their uncertainty.

    Binary models: filled contours of P(classes_[1] | x), the 0.5 boundary, and,
    for models with ``predict_interval``, dashed contours of the width of the
    ``prob`` credible interval of that probability. Multiclass: each point is
    coloured by its most probable class, faded by that class's probability.

    Parameters
    ----------
    model : fitted classifier on exactly two features
    X, y : the data to scatter on top

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> fig = decision_regions(plr.LaplaceLogisticRegression().fit(X, y), X, y, resolution=30)
    >>> fig.axes[0].get_xlabel()
    'x1'
    """
    X_arr = np.asarray(X, dtype=float)
    if X_arr.ndim != 2 or X_arr.shape[1] != 2:
        raise ValueError(
            f"decision_regions draws a plane and needs exactly 2 features; X has shape "
            f"{X_arr.shape}. Fit a model on two columns to plot it."
        )
    fig, ax = _figure(ax)
    pad = 0.1 * (X_arr.max(axis=0) - X_arr.min(axis=0))
    lo, hi = X_arr.min(axis=0) - pad, X_arr.max(axis=0) + pad
    g0, g1 = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    if hasattr(X, "columns"):
        grid = _like_frame(X, grid)
    proba = np.asarray(model.predict_proba(grid))
    codes = encode_labels(model.classes_, y)
    names = [str(c) for c in model.classes_]
    if proba.shape[1] == 2:
        filled = ax.contourf(
            g0,
            g1,
            proba[:, 1].reshape(g0.shape),
            levels=np.linspace(0, 1, 11),
            cmap="RdBu_r",
            alpha=0.8,
        )
        fig.colorbar(filled, ax=ax, label=f"P({names[1]} | x)")
        ax.contour(g0, g1, proba[:, 1].reshape(g0.shape), levels=[0.5], colors="k")
        if hasattr(model, "predict_interval"):
            lower, upper = model.predict_interval(grid, prob=prob)
            width = (np.asarray(upper) - np.asarray(lower))[:, 1].reshape(g0.shape)
            lines = ax.contour(
                g0, g1, width, levels=5, colors="k", linestyles="dashed", linewidths=0.8
            )
            ax.clabel(lines, fmt=lambda v: f"{v:.2f}", fontsize=7)
            ax.set_title(f"P({names[1]}|x); dashed: width of the {prob:.0%} interval")
        else:
            ax.set_title(f"P({names[1]} | x)")
    else:
        colours = plt.get_cmap("tab10")(np.arange(proba.shape[1]) % 10)
        image = colours[proba.argmax(axis=1)].copy()
        image[:, 3] = 0.15 + 0.6 * (proba.max(axis=1) - 1 / proba.shape[1]) / (
            1 - 1 / proba.shape[1]
        )
        ax.imshow(
            image.reshape(*g0.shape, 4),
            origin="lower",
            extent=(lo[0], hi[0], lo[1], hi[1]),
            aspect="auto",
        )
        ax.set_title("Most probable class (faded where uncertain)")
    markers = "o^sDvP*X"
    faces = ["white", "black"] if proba.shape[1] == 2 else plt.get_cmap("tab10").colors
    for code, name in enumerate(names):
        mine = codes == code
        ax.scatter(
            X_arr[mine, 0],
            X_arr[mine, 1],
            marker=markers[code % len(markers)],
            facecolors=faces[code % len(faces)],
            edgecolors="k",
            linewidths=0.6,
            s=22,
            label=name,
        )
    ax.legend(title="class", fontsize=8, loc="best")
    labels = list(X.columns) if hasattr(X, "columns") else ["x0", "x1"]
    ax.set_xlabel(str(labels[0]))
    ax.set_ylabel(str(labels[1]))
    return fig


def _like_frame(X, values):
    import pandas as pd

    return pd.DataFrame(values, columns=X.columns)


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


def comparison(compare_table):
    """ArviZ's ELPD comparison plot of a :func:`problogreg.compare` table.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> models = {"map": plr.MAPLogisticRegression().fit(X, y),
    ...           "lda": plr.SharedCovarianceGaussian().fit(X, y)}
    >>> fig = comparison(plr.compare(models, X, y))
    >>> len(fig.axes) >= 1
    True
    """
    import arviz as az

    table = compare_table.rename(columns={"elpd_loo": "elpd", "p_loo": "p"})
    return _arviz_figure(az.plot_compare(table))


def coefficient_forest(posteriors: Mapping[str, object], *, feature_scale=None):
    """Forest plot of coefficients across models (ArviZ), one colour per model.

    Parameters
    ----------
    posteriors : mapping of name -> DataTree or model with ``idata_`` / ``sample_posterior``
    feature_scale : array of shape (n_features,), optional
        Multiply coefficient j by ``feature_scale[j]`` -- e.g. the sd of x_j, to show
        the effect of one sd on the log-odds, comparable across features in any units.

    Every posterior is pooled into one chain of a common length, so that models
    sampled with different numbers of chains and draws line up.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> laplace = plr.LaplaceLogisticRegression().fit(X, y)
    >>> wide = plr.LaplaceLogisticRegression(prior_scale=10.0).fit(X, y)
    >>> fig = coefficient_forest({"Laplace": laplace, "wide prior": wide})
    >>> len(fig.axes) >= 1
    True
    """
    import arviz as az

    for post in posteriors.values():
        flat_draws(posterior_tree(post, 10, 0), "coef")  # a clear error for a model without coef
    coefs = {
        name: posterior_tree(post, 2000, 0).posterior["coef"] for name, post in posteriors.items()
    }
    n_draws = min(coef.sizes["chain"] * coef.sizes["draw"] for coef in coefs.values())
    trees = {}
    for name, coef in coefs.items():
        extra = [dim for dim in coef.dims if dim not in ("chain", "draw")]
        pooled = coef.stack(sample=("chain", "draw")).transpose("sample", *extra)[:n_draws]
        values = pooled.values * (1.0 if feature_scale is None else np.asarray(feature_scale))
        trees[name] = az.from_dict(
            {"posterior": {"coef": values[None]}},
            coords={dim: coef[dim].values for dim in extra},
            dims={"coef": extra},
        )
    plot = az.plot_forest(trees, var_names=["coef"], combined=True)
    plot.add_legend("model")
    figure = _arviz_figure(plot)
    if feature_scale is not None:
        figure.suptitle("coefficient x sd(x): change in log-odds per sd of the feature")
    return figure


def posterior_overlay(laplace, nuts, *, max_params: int = 12):
    """Laplace Gaussian marginals (lines) over NUTS histograms, one panel per parameter.

    ``nuts`` is usually a fitted PyMCLogisticRegression; any posterior with
    ``coef`` and ``intercept`` draws (a model or a DataTree) can be the reference.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> laplace = plr.LaplaceLogisticRegression().fit(X, y)
    >>> reference = plr.LaplaceLogisticRegression(prior_scale=10.0).fit(X, y)
    >>> fig = posterior_overlay(laplace, reference.sample_posterior(random_state=0))
    >>> [ax.get_title() for ax in fig.axes]
    ['intercept', 'coef[x1]', 'coef[x2]']
    """
    tree = posterior_tree(nuts)
    draws, names = [], []
    for var in ("intercept", "coef"):
        values, labels = flat_draws(tree, var)
        draws.append(values)
        names += labels
    draws = np.hstack(draws)[:, :max_params]
    names = names[:max_params]
    laplace_tree = laplace.sample_posterior(draws=4000, random_state=0)
    gaussian = np.hstack([flat_draws(laplace_tree, v)[0] for v in ("intercept", "coef")])
    means, sds = gaussian.mean(axis=0)[:max_params], gaussian.std(axis=0)[:max_params]
    cols = min(4, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for j, ax in enumerate(axes.ravel()):
        if j >= len(names):
            ax.set_visible(False)
            continue
        ax.hist(draws[:, j], bins=40, density=True, color="tab:blue", alpha=0.5, label="NUTS")
        grid = np.linspace(*np.percentile(draws[:, j], [0.1, 99.9]), 200)
        ax.plot(grid, stats.norm.pdf(grid, means[j], sds[j]), color="tab:red", label="Laplace")
        ax.set_title(names[j], fontsize=8)
        ax.tick_params(labelsize=7)
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("Posterior marginals: NUTS (histogram) vs Laplace (line)")
    fig.tight_layout()
    return fig


def trace(nuts, *, var_names=("intercept", "coef")):
    """ArviZ trace and marginal density plot of the NUTS draws.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> nuts = plr.PyMCLogisticRegression(draws=300, tune=200, chains=2, random_state=0,
    ...                                   progressbar=False).fit(X, y)
    >>> len(trace(nuts).axes) >= 3, len(rank(nuts).axes) >= 3
    (True, True)
    """
    import arviz as az

    return _arviz_figure(az.plot_trace_dist(nuts.idata_, var_names=list(var_names)))


def rank(nuts, *, var_names=("intercept", "coef")):
    """ArviZ rank plot of the NUTS draws (uniform ranks across chains = good mixing).

    See :func:`trace` for an example.
    """
    import arviz as az

    return _arviz_figure(az.plot_rank(nuts.idata_, var_names=list(var_names)))


def loss_surface(
    model, X, y, *, feature=0, class_index: int = -1, span: float = 4.0, sample_weight=None, ax=None
):
    r"""Negative log-posterior along one coefficient, the others fixed at the optimum.

    Plots :math:`f(\theta) = -\sum_i s_i \log p(y_i|x_i,\theta) + \tfrac12\sum_j
    \theta_j^2/s_j^2` as coefficient ``feature`` of row ``class_index`` moves over
    ``estimate +- span * std_error`` (or +-span when no standard error exists),
    with the optimum marked; with a proper prior the negative log-likelihood
    alone is drawn too, to show what the prior adds.

    Parameters
    ----------
    model : a fitted MAP or Laplace model (anything with a ``result_``), on (X, y)
    feature : int or str
        Column index or name.
    class_index : int, default=-1
        Row of coefficients (multiclass): a class of the likelihood's rows.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("two_gaussians", n_samples=80)
    >>> fig = loss_surface(plr.MAPLogisticRegression().fit(X, y), X, y, feature="x1")
    >>> fig.axes[0].get_ylabel()
    'loss'
    """
    result = getattr(model, "result_", None)
    if result is None:
        raise TypeError(
            f"loss_surface draws the objective of a logistic model fitted at its mode; "
            f"{type(model).__name__} has none (no result_). Pass a fitted "
            "MAPLogisticRegression or LaplaceLogisticRegression."
        )
    X_arr, codes, weights = validate_training_data(model, X, y, sample_weight)
    names = feature_names(model)
    if isinstance(feature, str):
        if feature not in names:
            raise ValueError(f"feature {feature!r} is not one of the model's features {names}.")
        feature_index = names.index(feature)
    elif -len(names) <= int(feature) < len(names):
        feature_index = int(feature) % len(names)
    else:
        raise ValueError(
            f"feature={feature} is out of range: the model has {len(names)} features "
            f"(indices 0..{len(names) - 1}, or a name from {names})."
        )
    layout = result.layout
    row = class_index % layout.n_rows
    likelihood = SoftmaxLikelihood(X_arr, codes, weights, layout.n_classes, layout.reference)
    objective = PosteriorObjective(likelihood, result.prior)
    index = layout.coefficient_index(row, feature_index)
    centre = result.theta[index]
    if result.cholesky is None:  # no Hessian (L-BFGS fit): a fixed window
        half = span
    else:
        half = span * laplace_posterior(result).marginal_sd(layout.jacobian())[index]
    values = np.linspace(centre - half, centre + half, 201)
    nll, penalised = [], []
    for value in values:
        theta = result.theta.copy()
        theta[index] = value
        nll.append(likelihood.loss(theta))
        penalised.append(objective.value(layout.from_likelihood(theta)))
    fig, ax = _figure(ax)
    ax.plot(values, penalised, label="negative log-posterior")
    if np.isfinite(result.prior_scale).any():
        ax.plot(values, nll, linestyle="--", label="negative log-likelihood")
    ax.axvline(centre, color="k", linestyle=":", label=f"optimum {centre:.3g}")
    row_class = layout.row_classes(model.classes_)[row]
    ax.set_xlabel(
        f"coefficient of {names[feature_index]}"
        + ("" if layout.binary else f" (class {row_class})")
    )
    ax.set_ylabel("loss")
    ax.set_title("Loss along one weight, the others at the optimum")
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
