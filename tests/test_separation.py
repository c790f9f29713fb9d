"""Separation (infinite MLE) and unidentified parameters give actionable errors."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from problogreg.core import separation
from problogreg.models.map import MAPLogisticRegression, SeparationError, SeparationWarning

FLAT = dict(prior_scale=None, intercept_prior_scale=None)


@pytest.fixture
def complete_binary():
    """x0 < 0 is class 'a', x0 > 0 is class 'b'; x1 is noise."""
    rng = np.random.default_rng(0)
    x = np.linspace(-2, 2, 20)
    X = np.column_stack([x, rng.normal(size=20)])
    return X, np.where(x > 0, "b", "a")


@pytest.fixture
def quasi_binary():
    """Classes overlap only at x0 == 0: the MLE of the x0 slope is still infinite."""
    rng = np.random.default_rng(1)
    x = np.r_[np.linspace(-2, -0.1, 10), np.zeros(4), np.linspace(0.1, 2, 10)]
    y = np.r_[np.zeros(10), [0, 1, 0, 1], np.ones(10)].astype(int)
    return np.column_stack([x, rng.normal(size=24)]), y


@pytest.fixture
def complete_multiclass():
    rng = np.random.default_rng(2)
    codes = np.repeat([0, 1, 2], 10)
    X = np.column_stack([5.0 * codes + rng.normal(size=30), rng.normal(size=30)])
    return X, np.array(["low", "mid", "high"])[codes]


@pytest.fixture
def quasi_multiclass():
    """Class 2 lies far to the right; classes 0 and 1 overlap with each other."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    y = rng.integers(0, 2, size=40)
    y[:8] = 2
    X[:8, 0] += 10.0
    return X, y


def separation_message(X, y, sample_weight=None, **params):
    with pytest.raises(SeparationError) as info:
        MAPLogisticRegression(**{**FLAT, **params}).fit(X, y, sample_weight=sample_weight)
    message = str(info.value)
    # Every separation message names the cause and the fix.
    assert "separable" in message and "maximum-likelihood estimate is infinite" in message
    assert "prior" in message
    return message


def test_separation_error_is_a_value_error():
    assert issubclass(SeparationError, ValueError)


def test_complete_binary_separation_names_classes(complete_binary):
    message = separation_message(*complete_binary)
    assert "'a' and 'b'" in message
    assert "x0" in message


def test_quasi_complete_binary_separation(quasi_binary):
    message = separation_message(*quasi_binary)
    assert "0 and 1" in message
    assert "[x0]" in message


def test_flat_coefficients_with_proper_intercept_prior_still_separate(quasi_binary):
    separation_message(*quasi_binary, intercept_prior_scale=10.0)


def test_complete_multiclass_separation(complete_multiclass):
    message = separation_message(*complete_multiclass)
    assert "'low'" in message


def test_quasi_complete_multiclass_separation_names_the_separated_class(quasi_multiclass):
    message = separation_message(*quasi_multiclass)
    assert "0 and 2" in message and "1 and 2" in message
    assert "0 and 1" not in message


def test_zero_weight_rows_do_not_break_separation(quasi_binary):
    """Giving the overlapping rows zero weight leaves completely separated data."""
    X, y = quasi_binary
    weights = np.where(X[:, 0] == 0, 0.0, 1.0)
    separation_message(X, y, sample_weight=weights)


def test_flat_prior_only_on_a_non_separating_feature_is_fine(quasi_binary):
    X, y = quasi_binary
    model = MAPLogisticRegression(prior_scale=[1.0, np.inf], intercept_prior_scale=None)
    model.fit(X, y)
    assert model.converged_ and np.all(np.isfinite(model.coef_))


def test_flat_prior_on_the_separating_feature_alone_separates(quasi_binary):
    message = separation_message(*quasi_binary, prior_scale=[np.inf, 1.0])
    assert "[x0]" in message


@pytest.mark.parametrize(
    "dataset", ["complete_binary", "quasi_binary", "complete_multiclass", "quasi_multiclass"]
)
def test_proper_prior_fixes_separation(request, dataset):
    """With a proper prior the MAP exists; it matches scikit-learn's L2 fit (C = s**2)."""
    X, y = request.getfixturevalue(dataset)
    model = MAPLogisticRegression(prior_scale=1.0, intercept_prior_scale=None, autoscale=False)
    model.fit(X, y)
    assert model.converged_
    reference = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    reference.fit(X, y)
    assert_allclose(model.coef_, reference.coef_, rtol=0, atol=1e-6)
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-6)
    # The default weakly informative prior also gives a finite, converged fit.
    default = MAPLogisticRegression().fit(X, y)
    assert default.converged_ and np.all(np.abs(default.coef_) < 50)


def test_overlapping_data_is_not_called_separated():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] + rng.logistic(size=60) > 0).astype(int)
    model = MAPLogisticRegression(**FLAT).fit(X, y)
    assert model.converged_


# -- unidentified parameters under a flat prior --------------------------------------


def test_constant_column_with_flat_prior_is_named():
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"age": rng.normal(size=40), "one": 3.0})
    y = rng.integers(0, 2, size=40)
    with pytest.raises(ValueError, match="Constant columns") as info:
        MAPLogisticRegression(**FLAT).fit(X, y)
    message = str(info.value)
    assert "['one']" in message and "'intercept'" in message
    assert "age" not in message
    assert "prior_scale" in message  # the fix


@pytest.mark.parametrize("n_classes", [2, 3])
def test_collinear_columns_with_flat_prior_are_named(n_classes):
    rng = np.random.default_rng(6)
    Z = rng.normal(size=(60, 3))
    X = pd.DataFrame(np.column_stack([Z, Z[:, 0] - 2 * Z[:, 2]]), columns=["a", "b", "c", "d"])
    y = np.arange(60) % n_classes
    with pytest.raises(ValueError, match="linearly dependent") as info:
        MAPLogisticRegression(**FLAT).fit(X, y)
    message = str(info.value)
    for name in ("a", "c", "d"):
        assert f"'{name}" in message
    assert "'b" not in message
    assert not isinstance(info.value, SeparationError)


def test_unidentified_columns_are_fine_with_a_proper_prior():
    rng = np.random.default_rng(7)
    Z = rng.normal(size=(60, 2))
    X = np.column_stack([Z, Z[:, 0] + Z[:, 1], np.full(60, 2.0)])
    y = (Z[:, 0] + rng.logistic(size=60) > 0).astype(int)
    model = MAPLogisticRegression().fit(X, y)
    assert model.converged_ and np.all(np.isfinite(model.summary()["std_error"]))
    # A proper intercept prior alone identifies the constant column's direction.
    model = MAPLogisticRegression(prior_scale=None).fit(X[:, [0, 3]], y)
    assert model.converged_


def test_separable_data_too_large_for_the_lp_still_warn(monkeypatch, complete_binary):
    """Without the exact check the fit's symptoms (probabilities of exactly 0 or 1) must
    still stop a diverging MLE from passing in silence."""
    monkeypatch.setattr(separation, "MAX_LP_ENTRIES", 0)
    with pytest.warns(ConvergenceWarning, match="may be separable"):
        MAPLogisticRegression(**FLAT).fit(*complete_binary)


def test_overlapping_data_too_large_for_the_lp_fit_quietly(monkeypatch):
    monkeypatch.setattr(separation, "MAX_LP_ENTRIES", 0)
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] + rng.logistic(size=60) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MAPLogisticRegression(**FLAT).fit(X, y).converged_


@pytest.mark.parametrize(
    ("X", "y", "wording"),
    [
        ([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1], "are completely separable"),
        ([[0.0], [1.0], [2.0], [2.0], [3.0]], [0, 0, 0, 1, 1], "are quasi-completely separable"),
    ],
)
def test_message_tells_complete_from_quasi_complete_separation(X, y, wording):
    with pytest.raises(SeparationError, match=wording):
        MAPLogisticRegression(prior_scale=None, intercept_prior_scale=None).fit(X, y)


@pytest.mark.parametrize("overlap", [0, 3])
def test_separation_is_found_when_the_first_steps_are_subsampled(overlap):
    """5000 rows, 4 parameters: the default solver starts on subsampled Hessians."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 3))
    y = (X[:, 0] > 0).astype(int)
    if not overlap:
        assert "completely separable" in separation_message(X, y)
        return
    # A few samples on the wrong side: the MLE is finite, large, and the same as exact
    # Newton's; fitted probabilities numerically 0 or 1 are reported, as R's glm does.
    wrong_side = np.argsort(np.abs(X[:, 0]))[-overlap:]
    y[wrong_side] = 1 - y[wrong_side]
    with pytest.warns(SeparationWarning, match="The exact check finds no separation"):
        auto = MAPLogisticRegression(**FLAT, tol=1e-12).fit(X, y)
    with pytest.warns(SeparationWarning, match="numerically 0 or 1 occurred"):
        exact = MAPLogisticRegression(**FLAT, solver="newton", tol=1e-12).fit(X, y)
    assert auto.converged_ and auto.coef_[0, 0] > 5
    np.testing.assert_allclose(auto.coef_, exact.coef_, rtol=1e-8)
