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


def _observed_and_median(ax):
    """The observed points (black diamonds) and the replicated medians of a ppc panel."""
    observed = next(line for line in ax.lines if line.get_marker() == "D")
    median = next(line for line in ax.lines if line.get_marker() == "o")
    return np.asarray(observed.get_ydata()), np.asarray(median.get_ydata())


def test_ppc_class_counts_against_replicated_counts(three_class):
    from problogreg import LaplaceLogisticRegression

    X, y, _ = three_class
    model = LaplaceLogisticRegression().fit(X, y)
    fig = plots.ppc(model, X, y, draws=400)
    observed, median = _observed_and_median(fig.axes[0])
    np.testing.assert_array_equal(observed, np.unique(y, return_counts=True)[1])
    # A replicated count has mean sum_i p_ik and sd at most sqrt(n) / 2.
    expected = model.predict_proba(X, method="mc").sum(axis=0)
    assert np.all(np.abs(median - expected) < 3 * np.sqrt(len(y)) / 2)
    fig.canvas.draw()


def test_ppc_binomial_groups_and_errors():
    import problogreg as plr
    from problogreg import LaplaceLogisticRegression, NaiveBayes

    flights = datasets.table("challenger")
    X, successes = flights[["temperature_f"]], flights["n_distressed"].to_numpy()
    trials = np.full(len(successes), 6)
    model = LaplaceLogisticRegression().fit(X, successes, trials=trials)
    fig = plots.ppc(model, X, successes, trials=trials, draws=300)
    observed, _ = _observed_and_median(fig.axes[0])
    order = np.argsort(model.predict_proba(X)[:, 1], kind="stable")
    assert sorted(observed) == sorted(successes / 6)
    assert observed[-1] == pytest.approx(successes[order[-1]] / 6)
    assert fig.axes[0].get_ylabel() == "proportion of successes"
    flights["intact"] = 6 - flights["n_distressed"]
    formula_model = plr.from_formula("n_distressed + intact ~ temperature_f", flights)
    from_formula, _ = _observed_and_median(plots.ppc(formula_model, flights, draws=300).axes[0])
    np.testing.assert_array_equal(from_formula, observed)
    Xg, yg = datasets.load("two_gaussians", n_samples=60)
    with pytest.raises(ValueError, match="not linear in x"):
        plots.ppc(NaiveBayes().fit(Xg, yg), Xg, yg, draws=50)
