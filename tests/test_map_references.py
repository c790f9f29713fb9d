"""MAP and MLE fits against independent implementations: scikit-learn and statsmodels.

The equivalence documented with the prior (README, "The prior"): ``prior_scale=sqrt(C),
intercept_prior_scale=None, autoscale=False`` is scikit-learn's ``LogisticRegression(C=C)`` (penalty
``0.5 * ||w||^2 / C``, unpenalised intercept). With every prior flat the fit is the
MLE, which statsmodels ``Logit`` / ``MNLogit`` compute with their own Newton solver.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from problogreg.models.map import MAPLogisticRegression


def sklearn_reference(X, y, C, sample_weight=None):
    """scikit-learn run to its own solver precision (tight tol, enough iterations)."""
    model = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    return model.fit(X, y, sample_weight=sample_weight)


def map_equivalent(C, **kwargs):
    return MAPLogisticRegression(
        prior_scale=np.sqrt(C), intercept_prior_scale=None, autoscale=False, **kwargs
    )


@pytest.fixture(scope="module")
def binary_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)) * [1.0, 2.0, 0.5, 1.0, 3.0]
    logit = 0.3 + X @ np.array([1.0, -0.5, 2.0, 0.0, 0.2])
    y = (rng.uniform(size=300) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def multiclass_data():
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_binary_agrees_with_sklearn(binary_data, C):
    X, y = binary_data
    ref = sklearn_reference(X, y, C)
    ours = map_equivalent(C).fit(X, y)
    assert ours.coef_.shape == ref.coef_.shape == (1, 5)
    assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-6)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=0, atol=1e-6)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=0, atol=1e-6)
    assert_allclose(ours.decision_function(X), ref.decision_function(X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("C", [0.05, 1.0, 20.0])
def test_multinomial_agrees_with_sklearn(multiclass_data, C):
    X, y = multiclass_data
    ref = sklearn_reference(X, y, C)
    ours = map_equivalent(C).fit(X, y)
    assert ours.multiclass_ == "symmetric"
    assert ours.coef_.shape == ref.coef_.shape == (3, 4)
    assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-6)
    # With a flat intercept prior only intercept differences are identified; compare
    # them after centring (we store the sum-to-zero representative).
    assert abs(ours.intercept_.sum()) < 1e-10
    ref_intercept = ref.intercept_ - ref.intercept_.mean()
    assert_allclose(ours.intercept_, ref_intercept, rtol=0, atol=1e-6)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
def test_weighted_fits_agree_with_sklearn(binary_data, multiclass_data, solver):
    for X, y in (binary_data, multiclass_data):
        weights = np.random.default_rng(1).uniform(0.1, 3.0, size=len(y))
        ref = sklearn_reference(X, y, 0.5, sample_weight=weights)
        ours = map_equivalent(0.5, solver=solver).fit(X, y, sample_weight=weights)
        assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-6)
        assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=0, atol=1e-6)


def test_autoscale_is_sklearn_on_standardised_features(binary_data):
    """With autoscale the prior sd of w_j is s / sd_j; on z_j = x_j / sd_j it is s."""
    X, y = binary_data
    C = 0.3
    sd = X.std(axis=0)
    ref = sklearn_reference(X / sd, y, C)
    ours = MAPLogisticRegression(prior_scale=np.sqrt(C), intercept_prior_scale=None).fit(X, y)
    assert_allclose(ours.prior_scale_, np.sqrt(C) / sd, rtol=1e-12)
    assert_allclose(ours.coef_ * sd, ref.coef_, rtol=0, atol=1e-6)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=0, atol=1e-6)


def test_per_feature_prior_scale_is_sklearn_on_rescaled_features(binary_data):
    """Prior sd s_j on w_j is sklearn's C=1 on x_j * s_j (coefficient w_j / s_j)."""
    X, y = binary_data
    scales = np.array([0.5, 1.0, 2.0, 0.1, 3.0])
    ref = sklearn_reference(X * scales, y, 1.0)
    ours = MAPLogisticRegression(
        prior_scale=scales, intercept_prior_scale=None, autoscale=False
    ).fit(X, y)
    assert_allclose(ours.coef_ / scales, ref.coef_, rtol=0, atol=1e-6)


# -- statsmodels MLE -----------------------------------------------------------------


def statsmodels_table(result):
    """statsmodels' estimates in our summary's row order (class-major, intercept first)."""
    params = np.asarray(result.params)
    if params.ndim == 1:
        return params, np.asarray(result.bse), np.asarray(result.pvalues)
    # MNLogit: columns are the non-reference classes, rows the exog terms.
    return (
        params.T.ravel(),
        np.asarray(result.bse).T.ravel(),
        np.asarray(result.pvalues).T.ravel(),
    )


@pytest.fixture(scope="module")
def spector():
    data = sm.datasets.spector.load_pandas()
    return data.exog, data.endog


@pytest.fixture(scope="module")
def anes96():
    data = sm.datasets.anes96.load_pandas().data
    exog = data[["logpopul", "selfLR", "age", "educ", "income"]]
    return exog, data["PID"]


def mle():
    return MAPLogisticRegression(prior_scale=None, intercept_prior_scale=None)


def test_logit_mle_agrees_with_statsmodels(spector):
    X, y = spector
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    ours = mle().fit(X, y)
    table = ours.summary()
    estimate, bse, pvalues = statsmodels_table(ref)
    assert list(table.index.get_level_values("term")) == ["intercept", "GPA", "TUCE", "PSI"]
    assert_allclose(table["estimate"], estimate, rtol=1e-8, atol=1e-10)
    assert_allclose(table["std_error"], bse, rtol=1e-8)
    assert_allclose(table["p_value"], pvalues, rtol=1e-6)
    assert_allclose(table[["ci_lower", "ci_upper"]], ref.conf_int(0.05), rtol=1e-8)
    assert_allclose(ours.log_likelihood_, ref.llf, rtol=1e-12)
    assert not hasattr(ours, "log_posterior_")
    assert_allclose(ours.predict_proba(X)[:, 1], ref.predict(sm.add_constant(X)), atol=1e-9)


def test_mnlogit_mle_agrees_with_statsmodels(anes96):
    X, y = anes96
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    ours = mle().fit(X, y)
    assert ours.multiclass_ == "reference"
    table = ours.summary()
    estimate, bse, pvalues = statsmodels_table(ref)
    # statsmodels' reference is the first (smallest) PID, like our classes_[0].
    assert list(table.index.get_level_values("class").unique()) == list(ours.classes_[1:])
    assert_allclose(table["estimate"], estimate, rtol=1e-7, atol=1e-9)
    assert_allclose(table["std_error"], bse, rtol=1e-7)
    assert_allclose(table["p_value"], pvalues, rtol=1e-5, atol=1e-12)
    assert_allclose(ours.log_likelihood_, ref.llf, rtol=1e-12)
    assert_allclose(ours.predict_proba(X), ref.predict(sm.add_constant(X)), atol=1e-8)
    assert np.all(ours.coef_[0] == 0) and ours.intercept_[0] == 0


def test_weighted_mle_agrees_with_statsmodels_glm_freq_weights(spector):
    X, y = spector
    weights = np.tile([1, 2, 3, 1], len(y) // 4)
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial(), freq_weights=weights)
    ref = ref.fit(tol=1e-12)
    ours = mle().fit(X, y, sample_weight=weights)
    table = ours.summary()
    assert_allclose(table["estimate"], ref.params, rtol=1e-7)
    assert_allclose(table["std_error"], ref.bse, rtol=1e-7)


def test_summary_interval_uses_normal_quantile(spector):
    X, y = spector
    model = MAPLogisticRegression().fit(X, y)
    for prob in (0.5, 0.9, 0.99):
        table = model.summary(ci_prob=prob)
        assert list(table.columns) == [
            "estimate",
            "std_error",
            "z",
            "p_value",
            "ci_lower",
            "ci_upper",
        ]
        lower, upper = stats.norm.interval(prob, loc=table["estimate"], scale=table["std_error"])
        assert_allclose(table["ci_lower"], lower, rtol=1e-12)
        assert_allclose(table["ci_upper"], upper, rtol=1e-12)
        assert_allclose(table["z"], table["estimate"] / table["std_error"], rtol=1e-12)
        assert_allclose(table["p_value"], 2 * stats.norm.cdf(-np.abs(table["z"])), rtol=1e-10)
        assert table.attrs["ci_prob"] == prob
    assert isinstance(table.index, pd.MultiIndex)
    assert table.index.names == ["class", "term"]


def test_large_weighted_binary_fit_agrees_with_sklearn():
    """n = 4000 >= 512 parameters' worth: the default solver starts on subsampled Hessians.

    Rows sorted by class and weights spanning two orders of magnitude make a
    uniform subset as unrepresentative as they come.
    """
    rng = np.random.default_rng(5)
    X = rng.normal(size=(4000, 4)) * [1.0, 3.0, 0.3, 1.0]
    logit = -0.5 + X @ np.array([1.5, -0.4, 2.0, 0.0])
    y = (rng.uniform(size=len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    weights = np.exp(rng.uniform(np.log(0.1), np.log(10.0), size=len(y)))
    ref = sklearn_reference(X, y, 0.5, sample_weight=weights)
    ours = map_equivalent(0.5).fit(X, y, sample_weight=weights)
    assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-6)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=0, atol=1e-6)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=0, atol=1e-6)
