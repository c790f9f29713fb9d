"""Grouped binomial data: exact binomial likelihood, checked against statsmodels GLM(Binomial)."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

import problogreg as plr
from problogreg.models._binomial import binomial_groups

FLAT = dict(prior_scale=None, intercept_prior_scale=None)


@pytest.fixture(scope="module")
def star98():
    data = sm.datasets.star98.load_pandas()
    successes = data.endog["NABOVE"].to_numpy()
    trials = successes + data.endog["NBELOW"].to_numpy()
    return data.exog, successes, trials, data.endog


def test_star98_mle_matches_statsmodels_glm(star98):
    X, successes, trials, endog = star98
    glm = sm.GLM(endog, sm.add_constant(X), family=sm.families.Binomial()).fit()
    # tol is relative to the total weight (255,000 trials here): 1e-10 puts the
    # coefficients within 1e-10 of the optimum.
    model = plr.MAPLogisticRegression(**FLAT, tol=1e-10).fit(X, successes, trials=trials)
    table = model.summary()
    np.testing.assert_allclose(table["estimate"], glm.params, rtol=0, atol=1e-8)
    np.testing.assert_allclose(table["std_error"], glm.bse, rtol=0, atol=1e-8)
    assert model.log_likelihood_ == pytest.approx(glm.llf, abs=1e-6)


def test_grouped_fit_equals_ungrouped_trials():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(12, 2))
    trials = rng.integers(1, 8, size=12)
    successes = rng.binomial(trials, 1 / (1 + np.exp(-X[:, 0])))
    grouped = plr.LaplaceLogisticRegression().fit(X, successes, trials=trials)
    rows = np.repeat(np.arange(12), trials)
    labels = np.concatenate([np.arange(n) < s for s, n in zip(successes, trials, strict=True)])
    ungrouped = plr.LaplaceLogisticRegression().fit(X[rows], labels.astype(int))
    np.testing.assert_allclose(grouped.coef_, ungrouped.coef_, atol=1e-9)
    np.testing.assert_allclose(grouped.posterior_cov_, ungrouped.posterior_cov_, atol=1e-9)
    log_binom = stats.binom.logpmf(successes, trials, 0.5).sum() - np.log(0.5) * trials.sum()
    assert grouped.log_likelihood_ == pytest.approx(ungrouped.log_likelihood_ + log_binom)


def test_loo_leaves_out_whole_groups(star98):
    X, successes, trials, _ = star98
    X, successes, trials = X.iloc[:40], successes[:40], trials[:40]
    model = plr.LaplaceLogisticRegression().fit(X, successes, trials=trials)
    loo = model.loo(X, successes, trials=trials, draws=500)
    assert loo.n_data_points == 40
    # The pointwise log-likelihood of a group is the binomial log pmf at each draw.
    groups = binomial_groups(X, successes, trials)
    free, _, predictor = model._draws(5, 0)
    rows, labels, _ = groups.rows(X.to_numpy())
    pointwise = groups.grouped(predictor.pointwise_log_likelihood(rows, labels))
    intercept, coef = model.result_.layout.class_rows(model.result_.layout.to_likelihood(free))
    eta = intercept[:, 1:] + coef[:, 1, :] @ X.to_numpy().T
    proba = 1 / (1 + np.exp(-eta))
    np.testing.assert_allclose(pointwise, stats.binom.logpmf(successes, trials, proba), rtol=1e-10)
    with pytest.raises(ValueError, match="fitted on binomial counts"):
        model.loo(X, successes)


def test_count_errors_name_rows():
    X = np.zeros((3, 1))
    with pytest.raises(ValueError, match="rows 1"):
        plr.MAPLogisticRegression().fit(X, [1, 5, 0], trials=[2, 3, 2])
    with pytest.raises(ValueError, match="non-negative integers; rows 2"):
        plr.MAPLogisticRegression().fit(X, [1, 1, 0.5], trials=[2, 3, 2])
    with pytest.raises(ValueError, match="3 values but X has 2 rows"):
        plr.MAPLogisticRegression().fit(X[:2], [1, 1, 0], trials=[2, 3, 2])
    with pytest.raises(ValueError, match="both outcomes"):
        plr.MAPLogisticRegression().fit(X, [0, 0, 0], trials=[2, 3, 2])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:NUTS may not have converged")
def test_nuts_binomial_matches_laplace_on_many_trials(star98):
    X, successes, trials, _ = star98
    X = X.iloc[:, :3]
    laplace = plr.LaplaceLogisticRegression().fit(X, successes, trials=trials)
    nuts = plr.PyMCLogisticRegression(
        draws=300, tune=200, chains=2, random_state=0, progressbar=False
    ).fit(X, successes, trials=trials)
    # 255,000 trials: the posterior is Gaussian to high accuracy, so the NUTS means sit
    # within Monte Carlo error (sd / sqrt(ESS)) of the Laplace mode.
    sd = laplace.summary()["sd"].to_numpy()[1:]
    assert np.all(np.abs(nuts.coef_ - laplace.coef_).ravel() < 5 * sd / np.sqrt(100))
    loo = nuts.loo(X, successes, trials=trials)
    assert loo.n_data_points == len(trials)
