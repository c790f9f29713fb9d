"""compare() of fits on binomial counts (the group as the unit) and of formula models."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from sklearn.metrics import brier_score_loss

import problogreg as plr
from problogreg.evaluation.binomial import leave_one_group_out
from problogreg.evaluation.compare import expected_calibration_error


@pytest.fixture(scope="module")
def counts():
    data = sm.datasets.star98.load_pandas()
    successes = data.endog["NABOVE"].to_numpy().astype(int)
    trials = successes + data.endog["NBELOW"].to_numpy().astype(int)
    X = data.exog.iloc[:, :3]
    return X.iloc[:40], successes[:40], trials[:40], X.iloc[40:60], successes[40:60], trials[40:60]


def test_map_leave_one_group_out_equals_brute_force_refits(counts):
    X, successes, trials = counts[:3]
    model = plr.MAPLogisticRegression(tol=1e-12).fit(X, successes, trials=trials)
    loo = leave_one_group_out(model, X, successes, trials)
    assert loo.n_data_points == 40
    brute = []
    for g in range(40):
        keep = np.arange(40) != g
        # The same prior as the full fit (autoscale resolved once, as in the refits).
        refit = plr.MAPLogisticRegression(
            prior_scale=model.prior_scale_,
            intercept_prior_scale=model.intercept_prior_scale_,
            autoscale=False,
            tol=1e-12,
        ).fit(X[keep], successes[keep], trials=trials[keep])
        p = refit.predict_proba(X.iloc[[g]])[0, 1]
        brute.append(stats.binom.logpmf(successes[g], trials[g], p))
    np.testing.assert_allclose(loo.elpd_i.to_numpy(), brute, rtol=0, atol=1e-6)


def test_compare_binomial_fits_by_group(counts):
    X, successes, trials, X_test, successes_test, trials_test = counts
    models = {
        "map": plr.MAPLogisticRegression().fit(X, successes, trials=trials),
        "laplace": plr.LaplaceLogisticRegression().fit(X, successes, trials=trials),
    }
    table = plr.compare(
        models, X, successes, X_test, successes_test, trials=trials, trials_test=trials_test
    )
    own = models["laplace"].loo(X, successes, trials=trials, random_state=0)
    assert table.loc["laplace", "elpd_loo"] == pytest.approx(own.elpd, abs=1e-10)
    exact = leave_one_group_out(models["map"], X, successes, trials)
    assert table.loc["map", "elpd_loo"] == pytest.approx(exact.elpd, abs=1e-10)
    # Held out: log loss per group (scipy), the rest those of the ungrouped 0/1 trials.
    p = models["laplace"].predict_proba(X_test)[:, 1]
    expected_log_loss = -stats.binom.logpmf(successes_test, trials_test, p).mean()
    assert table.loc["laplace", "test_log_loss"] == pytest.approx(expected_log_loss, rel=1e-12)
    rows = np.repeat(np.arange(20), trials_test)
    labels = np.concatenate(
        [np.arange(n) < s for s, n in zip(successes_test, trials_test, strict=True)]
    ).astype(int)
    proba = np.column_stack([1 - p[rows], p[rows]])
    brier = brier_score_loss(labels, proba, labels=[0, 1], scale_by_half=False)
    assert table.loc["laplace", "test_brier"] == pytest.approx(brier, rel=1e-10)
    accuracy = np.mean((p[rows] > 0.5) == labels)
    assert table.loc["laplace", "test_accuracy"] == pytest.approx(accuracy, rel=1e-12)
    ece = expected_calibration_error(proba, labels)
    assert table.loc["laplace", "test_ece"] == pytest.approx(ece, rel=1e-10)


def test_compare_refuses_a_label_fit_with_trials(counts):
    X, successes, trials = counts[:3]
    binomial = plr.LaplaceLogisticRegression().fit(X, successes, trials=trials)
    labels = plr.NaiveBayes().fit(X, successes > trials / 2)
    with pytest.raises(ValueError, match="fitted on class labels"):
        plr.compare({"laplace": binomial, "nb": labels}, X, successes, trials=trials)


def test_compare_formula_models_reads_the_data_frame():
    frame = pd.DataFrame(
        {
            "dose": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "dead": [1, 4, 9, 13, 18, 19],
            "alive": [19, 16, 11, 7, 2, 1],
        }
    )
    formulas = {"log": "dead + alive ~ log(dose)", "linear": "dead + alive ~ dose"}
    fitted = {
        name: plr.from_formula(formula, frame, model="map") for name, formula in formulas.items()
    }
    table = plr.compare(fitted, frame, X_test=frame)
    trials = (frame.dead + frame.alive).to_numpy()
    for name, model in fitted.items():
        X = model.design_matrix(frame)
        exact = leave_one_group_out(model.estimator_, X, frame.dead, trials)
        assert table.loc[name, "elpd_loo"] == pytest.approx(exact.elpd, abs=1e-10)
        p = model.predict_proba(frame)[:, 1]
        expected = -stats.binom.logpmf(frame.dead, trials, p).mean()
        assert table.loc[name, "test_log_loss"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="Pass both X and y"):
        plr.compare({"a": fitted["log"].estimator_, "b": fitted["linear"]}, frame)
