"""Predicted class probabilities over a plane of two features."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..core.validation import encode_labels
from ._axes import _figure


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
