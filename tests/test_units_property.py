"""Every model in any units: a converged, finite answer or a named ValueError.

Columns of random finite data are rescaled by 10^k, k in [-150, 150] (the range in
which squares of the values stay within double precision). Inputs whose squares
overflow are refused up front with one message naming the columns.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

import problogreg as plr
from problogreg.core.validation import MAX_ABS_FEATURE

MODELS = {
    "MAP": plr.MAPLogisticRegression,
    "Laplace": plr.LaplaceLogisticRegression,
    "LDA": plr.SharedCovarianceGaussian,
    "NaiveBayes": plr.NaiveBayes,
}


def simulated(seed: int, n_classes: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 3))
    logits = X @ rng.normal(size=(3, n_classes))
    y = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    y[:n_classes] = np.arange(n_classes)  # every class present
    return X, y


def fit_or_named_error(model, X, y):
    """The fitted model, or the message of a plain ValueError; anything else fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            fitted = model.fit(X, y)
        except ValueError as err:
            # A LinAlgError is a ValueError too, but an internal one.
            assert type(err) is ValueError, f"{type(err).__name__}: {err}"
            return str(err)
        proba = fitted.predict_proba(X)
    assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(axis=1), 1.0)
    if hasattr(fitted, "converged_"):
        assert fitted.converged_
        assert np.all(np.isfinite(fitted.coef_)) and np.all(np.isfinite(fitted.hessian_))
    return fitted


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_classes=st.sampled_from([2, 3]),
    exponents=st.lists(st.integers(-150, 150), min_size=3, max_size=3),
    name=st.sampled_from(sorted(MODELS)),
)
def test_any_units_give_a_finite_answer_or_a_named_error(seed, n_classes, exponents, name):
    X, y = simulated(seed, n_classes)
    scaled = X * 10.0 ** np.array(exponents)
    outcome = fit_or_named_error(MODELS[name](), scaled, y)
    if isinstance(outcome, str):
        # Only values whose squares would overflow are refused.
        assert np.abs(scaled).max() > MAX_ABS_FEATURE
        assert "Rescale these columns" in outcome
        return
    if name == "NaiveBayes":
        return  # var_smoothing adds a share of the largest variance: not unit-free by design
    # A unit change is a reparametrisation: the probabilities do not move.
    reference = MODELS[name]().fit(X, y).predict_proba(X)
    np.testing.assert_allclose(outcome.predict_proba(scaled), reference, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_overflowing_values_are_refused_with_the_columns_named(name):
    X, y = simulated(0, 2)
    X[:, 1] *= 1e154  # finite, but its square overflows
    with pytest.raises(ValueError, match=r"larger than 1e\+150 in magnitude in columns \['x1'\]"):
        MODELS[name]().fit(X, y)


@pytest.mark.parametrize("scale", [1e10, 1e18, 1e-18])
def test_a_column_in_extreme_units_converges_like_the_unscaled_fit(scale):
    """The convergence test is unit-free (a column in units of 1e10 used to exhaust
    max_iter with a warning, although the coefficients were right)."""
    X, y = simulated(1, 2)
    base = plr.MAPLogisticRegression().fit(X, y)
    X[:, 1] *= scale
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = plr.MAPLogisticRegression().fit(X, y)
    assert model.converged_ and model.n_iter_ <= base.n_iter_ + 1
    np.testing.assert_allclose(model.coef_[0] * [1, scale, 1], base.coef_[0], rtol=1e-9)
