"""Prior resolution and the normalised log prior density, against scipy and numpy."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from problogreg.core.priors import feature_scale, log_normal_density, resolve_prior


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -2.0]
    weights = rng.uniform(0.5, 2.0, size=30)
    return X, weights


def test_flat_prior_is_infinite_scale_and_zero_precision(data):
    X, w = data
    prior = resolve_prior(None, None, autoscale=True, X=X, sample_weight=w)
    assert np.all(np.isinf(prior.coef_scale)) and np.isinf(prior.intercept_scale)
    assert not prior.coef_is_proper and not prior.intercept_is_proper and not prior.is_proper


def test_scalar_scale_without_autoscale(data):
    X, w = data
    prior = resolve_prior(2.5, 10.0, autoscale=False, X=X, sample_weight=w)
    assert_allclose(prior.coef_scale, [2.5, 2.5, 2.5])
    assert prior.intercept_scale == 10.0
    assert prior.is_proper


def test_autoscale_divides_by_weighted_population_sd(data):
    X, w = data
    prior = resolve_prior(2.5, 10.0, autoscale=True, X=X, sample_weight=w)
    # Weighted population sd, written out independently: sqrt(sum w (x - xbar)^2 / sum w).
    xbar = (w[:, None] * X).sum(axis=0) / w.sum()
    sd = np.sqrt((w[:, None] * (X - xbar) ** 2).sum(axis=0) / w.sum())
    assert_allclose(prior.coef_scale, 2.5 / sd, rtol=1e-12)
    # The intercept scale is never rescaled.
    assert prior.intercept_scale == 10.0


def test_autoscale_unweighted_matches_numpy_std(data):
    X, _ = data
    assert_allclose(feature_scale(X, np.ones(len(X))), X.std(axis=0), rtol=1e-12)


def test_autoscale_leaves_constant_column_unscaled():
    X = np.column_stack([np.full(10, 3.0), np.arange(10.0)])
    prior = resolve_prior(2.0, None, autoscale=True, X=X, sample_weight=np.ones(10))
    assert prior.coef_scale[0] == 2.0
    assert_allclose(prior.coef_scale[1], 2.0 / np.arange(10.0).std())


def test_per_feature_scales_and_infinite_entries(data):
    X, w = data
    prior = resolve_prior([1.0, np.inf, 3.0], None, autoscale=False, X=X, sample_weight=w)
    assert_allclose(prior.coef_scale, [1.0, np.inf, 3.0])
    assert not prior.coef_is_proper


@pytest.mark.parametrize(
    "scale, match",
    [
        (0.0, "positive"),
        (-1.0, "positive"),
        (np.nan, "positive"),
        ([1.0, 2.0], r"shape \(2,\)"),
        ([1.0, -2.0, 1.0], "positive"),
    ],
)
def test_bad_prior_scale_is_explained(data, scale, match):
    X, w = data
    with pytest.raises(ValueError, match=match) as info:
        resolve_prior(scale, None, autoscale=False, X=X, sample_weight=w)
    assert "prior_scale" in str(info.value)


def test_bad_intercept_prior_scale_is_explained(data):
    X, w = data
    with pytest.raises(ValueError, match="intercept_prior_scale must be positive"):
        resolve_prior(1.0, -3.0, autoscale=False, X=X, sample_weight=w)


def test_resolve_prior_does_not_modify_inputs(data):
    X, w = data
    scales = np.array([1.0, 2.0, 3.0])
    copies = X.copy(), w.copy(), scales.copy()
    resolve_prior(scales, 1.0, autoscale=True, X=X, sample_weight=w)
    for before, after in zip(copies, (X, w, scales), strict=True):
        assert np.array_equal(before, after)


def test_log_normal_density_matches_scipy():
    rng = np.random.default_rng(4)
    theta = rng.normal(size=6)
    scale = rng.uniform(0.3, 4.0, size=6)
    expected = stats.norm(0, scale).logpdf(theta).sum()
    assert_allclose(log_normal_density(theta, scale), expected, rtol=1e-13)


def test_log_normal_density_skips_flat_entries():
    theta = np.array([0.3, 100.0, -1.2])
    scale = np.array([2.0, np.inf, 0.5])
    expected = stats.norm(0, 2.0).logpdf(0.3) + stats.norm(0, 0.5).logpdf(-1.2)
    assert_allclose(log_normal_density(theta, scale), expected, rtol=1e-13)
    assert log_normal_density(theta, np.full(3, np.inf)) == 0.0


def test_log_normal_density_of_a_stack_of_draws():
    rng = np.random.default_rng(5)
    draws = rng.normal(size=(4, 3))
    scale = np.array([1.5, np.inf, 0.7])
    expected = [stats.norm(0, scale[[0, 2]]).logpdf(row[[0, 2]]).sum() for row in draws]
    assert_allclose(log_normal_density(draws, scale), expected, rtol=1e-13)
