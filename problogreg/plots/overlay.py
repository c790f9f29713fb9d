"""Laplace Gaussian marginals against the draws of a reference posterior (NUTS)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from ..posterior.arviz_io import flat_draws, posterior_tree


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
