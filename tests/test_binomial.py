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


def binomial_logpmf_of_tree(tree, X, successes, trials):
    """scipy's log Binomial(s_g | n_g, p_g) at every draw of the tree's own coef and intercept."""
    posterior = tree.posterior.to_dataset()
    coef = posterior["coef"].to_numpy().reshape(-1, X.shape[1])
    intercept = posterior["intercept"].to_numpy().reshape(-1, 1)
    proba = 1 / (1 + np.exp(-(intercept + coef @ np.asarray(X, dtype=float).T)))
    return stats.binom.logpmf(successes, trials, proba)


def small_counts(n_groups=30, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_groups, 2))
    trials = rng.integers(2, 12, size=n_groups)
    successes = rng.binomial(trials, 1 / (1 + np.exp(-(0.3 + X @ [1.0, -0.5]))))
    return X, successes, trials


def test_laplace_sample_posterior_log_likelihood_is_per_group():
    import arviz as az

    X, successes, trials = small_counts()
    model = plr.LaplaceLogisticRegression().fit(X, successes, trials=trials)
    tree = model.sample_posterior(
        draws=1000, chains=4, random_state=1, X=X, y=successes, trials=trials
    )
    log_lik = tree.log_likelihood["y"]
    assert log_lik.dims == ("chain", "draw", "obs_id") and log_lik.shape == (4, 1000, 30)
    np.testing.assert_allclose(
        log_lik.to_numpy().reshape(-1, 30),
        binomial_logpmf_of_tree(tree, X, successes, trials),
        rtol=1e-10,
    )
    np.testing.assert_array_equal(tree.observed_data["y"], successes)
    # arviz.loo leaves out a group: its pointwise elpd matches brute-force refits without
    # each group, log of the mean binomial pmf of the group over the refit's draws.
    loo = az.loo(tree, pointwise=True)
    assert loo.n_data_points == 30
    brute = []
    for g in range(30):
        keep = np.arange(30) != g
        refit = plr.LaplaceLogisticRegression().fit(X[keep], successes[keep], trials=trials[keep])
        draws = refit.sample_posterior(draws=4000, chains=1, random_state=2)
        logpmf = binomial_logpmf_of_tree(draws, X[g : g + 1], successes[g], trials[g])
        brute.append(np.log(np.mean(np.exp(logpmf))))
    np.testing.assert_allclose(loo.elpd_i.to_numpy(), brute, atol=0.05)
    assert loo.elpd == pytest.approx(sum(brute), abs=0.1)


def test_sample_posterior_refuses_labels_for_counts_and_the_reverse():
    X, successes, trials = small_counts()
    model = plr.LaplaceLogisticRegression().fit(X, successes, trials=trials)
    with pytest.raises(ValueError, match="fitted on binomial counts"):
        model.sample_posterior(draws=10, chains=1, X=X, y=successes)
    labels = plr.LaplaceLogisticRegression().fit(X, successes > trials / 2)
    with pytest.raises(ValueError, match="fitted on class labels"):
        labels.sample_posterior(draws=10, chains=1, X=X, y=successes, trials=trials)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_nuts_idata_log_likelihood_is_per_group():
    import arviz as az

    X, successes, trials = small_counts()
    nuts = plr.PyMCLogisticRegression(
        draws=300, tune=200, chains=2, random_state=0, progressbar=False
    ).fit(X, successes, trials=trials)
    log_lik = nuts.idata_.log_likelihood["y"]
    assert log_lik.dims == ("chain", "draw", "obs_id") and log_lik.shape == (2, 300, 30)
    expected = binomial_logpmf_of_tree(nuts.idata_, X, successes, trials)
    np.testing.assert_allclose(log_lik.to_numpy().reshape(-1, 30), expected, rtol=1e-10)
    np.testing.assert_array_equal(nuts.idata_.observed_data["y"], successes)
    again = nuts.sample_posterior(X=X, y=successes, trials=trials)
    np.testing.assert_allclose(again.log_likelihood["y"], log_lik, rtol=1e-12)
    loo = az.loo(nuts.idata_)
    assert loo.n_data_points == 30
    # The same groups and draws as the estimator's own (plain PSIS) LOO by group.
    ours = nuts.loo(X, successes, trials=trials)
    assert loo.elpd == pytest.approx(ours.elpd, abs=1e-6)
