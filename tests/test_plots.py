import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure

from problogreg import MAPLogisticRegression, datasets, plots
from problogreg.evaluation.compare import compare


@pytest.fixture(scope="module")
def binary():
    X, y = datasets.load("two_gaussians", n_samples=120)
    return X, y, MAPLogisticRegression().fit(X, y)


@pytest.fixture(scope="module")
def three_class():
    X, y = datasets.load("three_class", n_samples=150)
    return X, y, MAPLogisticRegression().fit(X, y)


def axis_labels(fig):
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.get_visible()]


def test_decision_regions_binary_and_multiclass(binary, three_class):
    for X, y, model in (binary, three_class):
        fig = plots.decision_regions(model, X, y, resolution=40)
        assert isinstance(fig, Figure)
        assert ("x1", "x2") in axis_labels(fig)
        fig.canvas.draw()


def test_decision_regions_needs_two_features():
    X, y = datasets.load("breast_cancer")
    model = MAPLogisticRegression().fit(X.iloc[:, :3], y)
    with pytest.raises(ValueError, match="exactly 2 features"):
        plots.decision_regions(model, X.iloc[:, :3], y)


def test_calibration_has_one_curve_per_model(binary):
    X, y, model = binary
    fig = plots.calibration(
        {"map": model, "mle": MAPLogisticRegression(prior_scale=None).fit(X, y)}, X, y
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "predicted probability"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "perfect calibration",
        "map",
        "mle",
    ]


def test_loss_surface_is_minimal_at_the_optimum(binary, three_class):
    for X, y, model, kwargs in (
        (*binary, {"feature": "x2"}),
        (*three_class, {"feature": 0, "class_index": 1}),
    ):
        fig = plots.loss_surface(model, X, y, **kwargs)
        ax = fig.axes[0]
        posterior = ax.get_lines()[0]
        x, f = posterior.get_xdata(), posterior.get_ydata()
        # The curve's minimum sits at the marked optimum (grid spacing span/100).
        assert abs(x[np.argmin(f)] - ax.get_lines()[-1].get_xdata()[0]) <= (x[1] - x[0])
        assert ax.get_ylabel() == "loss"


def test_comparison_plot_renders(binary):
    X, y, model = binary
    table = compare(
        {"map": model, "tight": MAPLogisticRegression(prior_scale=0.05).fit(X, y)}, X, y
    )
    fig = plots.comparison(table)
    assert isinstance(fig, Figure)
    fig.canvas.draw()
