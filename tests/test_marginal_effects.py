"""Average marginal effects and odds ratios, against statsmodels."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import problogreg as plr

FLAT = dict(prior_scale=None, intercept_prior_scale=None)


@pytest.fixture(scope="module")
def spector():
    data = sm.datasets.spector.load_pandas()
    return data.exog, data.endog


@pytest.mark.parametrize("discrete", [False, True])
def test_mle_marginal_effects_match_statsmodels_get_margeff(spector, discrete):
    X, y = spector
    logit = sm.Logit(y, sm.add_constant(X)).fit(disp=0)
    reference = logit.get_margeff(at="overall", dummy=discrete).summary_frame()
    table = plr.MAPLogisticRegression(**FLAT).fit(X, y).marginal_effects(X, discrete=discrete)
    np.testing.assert_allclose(table["estimate"], reference["dy/dx"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(table["std_error"], reference["Std. Err."], rtol=0, atol=1e-6)
    np.testing.assert_allclose(table["ci_lower"], reference["Conf. Int. Low"], rtol=0, atol=1e-6)
    last = "discrete" if discrete else "derivative"
    assert list(table["kind"]) == ["derivative", "derivative", last]


def test_multinomial_marginal_effects_match_statsmodels_mnlogit():
    data = sm.datasets.anes96.load_pandas().data
    X = data[["logpopul", "age", "educ"]]
    y = pd.cut(data["PID"], [-1, 1, 4, 6], labels=False)  # three party groups
    reference = sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    margeff = reference.get_margeff(at="overall")
    model = plr.MAPLogisticRegression(**FLAT, multiclass="reference", tol=1e-12).fit(X, y)
    table = model.marginal_effects(X)
    # statsmodels: (features, classes); ours: classes outer, features inner.
    np.testing.assert_allclose(table["estimate"], margeff.margeff.T.ravel(), atol=1e-6)
    np.testing.assert_allclose(table["std_error"], margeff.margeff_se.T.ravel(), atol=1e-6)


def test_laplace_draws_agree_with_the_delta_method(spector):
    X, y = spector
    delta = plr.MAPLogisticRegression().fit(X, y).marginal_effects(X)
    draws = plr.LaplaceLogisticRegression().fit(X, y).marginal_effects(X, draws=8000)
    # Same Gaussian; the AME is nonlinear in the parameters, so only close, not equal.
    difference = np.abs(draws["estimate"] - delta["estimate"]).to_numpy()
    assert np.all(difference < 0.3 * delta["std_error"].to_numpy())
    np.testing.assert_allclose(draws["std_error"], delta["std_error"], rtol=0.2)
    assert "p_value" not in draws


@pytest.mark.parametrize("model", [plr.SharedCovarianceGaussian, plr.NaiveBayes])
def test_generative_effects_per_draw_equal_the_analytic_derivative(spector, model):
    X, y = spector
    X = X[["GPA", "TUCE"]]
    fitted = model().fit(X, y)
    table = fitted.marginal_effects(X, draws=300, random_state=4)
    if model is plr.NaiveBayes:  # logit not linear in x: check the sign and the spread only
        assert table.loc[(1.0, "GPA"), "estimate"] > 0
        assert np.all(table["std_error"] > 0)
        return
    # Linear logits b_s + x w_s: the AME of draw s is mean_i p_si (1 - p_si) w_sj.
    tree = fitted.sample_posterior(draws=300, chains=1, random_state=4)
    coef = tree.posterior["coef"].to_numpy().reshape(300, 2)
    intercept = tree.posterior["intercept"].to_numpy().reshape(300, 1)
    p = 1 / (1 + np.exp(-(intercept + coef @ X.to_numpy().T)))
    per_draw = np.einsum("si,sj->sj", p * (1 - p), coef) / len(X)
    np.testing.assert_allclose(table["estimate"], per_draw.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(table["std_error"], per_draw.std(axis=0, ddof=1), rtol=1e-6)


def test_features_argument_and_errors(spector):
    X, y = spector
    model = plr.MAPLogisticRegression().fit(X, y)
    assert list(model.marginal_effects(X, features=["GPA"]).index.get_level_values(1)) == ["GPA"]
    with pytest.raises(ValueError, match="not features of the model"):
        model.marginal_effects(X, features=["AGE"])


def test_formula_marginal_effects_differentiate_through_transforms(spector):
    X, y = spector
    data = X.assign(grade=y)
    table = plr.from_formula(
        "grade ~ np.log(GPA) + TUCE + PSI", data, model="map"
    ).marginal_effects(data)
    # d p / d GPA = p (1 - p) * b / GPA for the term log(GPA): by hand at the MLE-like MAP.
    fitted = plr.from_formula("grade ~ np.log(GPA) + TUCE + PSI", data, model="map")
    p = fitted.predict_proba(data)[:, 1]
    by_hand = np.mean(p * (1 - p) * fitted.coef_[0, 0] / data.GPA)
    assert table.loc[(1.0, "GPA"), "estimate"] == pytest.approx(by_hand, rel=1e-7)
    assert table.loc[(1.0, "PSI[1]"), "kind"] == "discrete"


def test_odds_ratios_transform_the_interval_ends(spector):
    X, y = spector
    logit = sm.Logit(y, sm.add_constant(X)).fit(disp=0)
    table = plr.MAPLogisticRegression(**FLAT).fit(X, y).odds_ratios()
    np.testing.assert_allclose(table["odds_ratio"], np.exp(logit.params), rtol=1e-6)
    np.testing.assert_allclose(table["ci_lower"], np.exp(logit.conf_int()[0]), rtol=1e-6)
    np.testing.assert_allclose(table["ci_upper"], np.exp(logit.conf_int()[1]), rtol=1e-6)
    assert "std_error" not in table


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:NUTS may not have converged")
def test_nuts_odds_ratios_and_effects_come_from_the_draws(spector):
    X, y = spector
    model = plr.PyMCLogisticRegression(
        draws=200, tune=200, chains=2, random_state=0, progressbar=False
    ).fit(X, y)
    coef = model.idata_.posterior["coef"].to_numpy().reshape(-1, 3)
    table = model.odds_ratios(ci_prob=0.9)
    np.testing.assert_allclose(table["mean"].to_numpy()[:3], np.exp(coef).mean(axis=0), rtol=0.01)
    effects = model.marginal_effects(X)
    assert np.all(effects["ci_lower"] < effects["estimate"])
    assert np.all(effects["estimate"] < effects["ci_upper"])
