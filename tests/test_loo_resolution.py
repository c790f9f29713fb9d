"""Leave-one-out that resolves its own warnings: refits, K-fold, and the unbiased Laplace LOO,
checked against brute force (refits by the estimators themselves, and quadrature of the
exact posterior)."""

import numpy as np
import pytest
from scipy import special

from problogreg import LaplaceLogisticRegression, MAPLogisticRegression, compare
from problogreg.evaluation.loo import LEVERAGE_FACTOR, approximate_loo
from problogreg.posterior import refit_loo
from problogreg.posterior.refit_loo import RefitProblem, resolve_loo

FIXED_PRIOR = {"prior_scale": 2.5, "intercept_prior_scale": 2.5, "autoscale": False}


def logistic_data(n, seed, intercept=0.5, slope=2.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1))
    y = (rng.random(n) < special.expit(intercept + slope * X[:, 0])).astype(int)
    return X, y


def quadrature_loo(X, y, scale=2.5, half_width=12.0, m=501):
    """Exact-posterior LOO of one feature and an intercept, both N(0, scale) a priori, by a
    grid over (intercept, slope): p(y_i | D_-i) = Z(D) / Z(D_-i)."""
    grid = np.linspace(-half_width, half_width, m)
    intercept, slope = np.meshgrid(grid, grid, indexing="ij")
    eta = intercept[..., None] + slope[..., None] * X[:, 0]
    log_lik = -np.logaddexp(0.0, -(2 * y - 1) * eta)
    log_post = log_lik.sum(-1) - 0.5 * (intercept**2 + slope**2) / scale**2
    out = np.empty(len(y))
    for i in range(len(y)):
        without = log_post - log_lik[..., i]
        out[i] = special.logsumexp(without + log_lik[..., i]) - special.logsumexp(without)
    return out


def brute_force_map_loo(X, y, rows, kwargs):
    out = []
    for rows_out in rows:
        keep = np.ones(len(y), dtype=bool)
        keep[rows_out] = False
        model = MAPLogisticRegression(**kwargs).fit(X[keep], y[keep])
        out.append(model.predict_log_proba(X[rows_out])[np.arange(len(rows_out)), y[rows_out]])
    return out


@pytest.mark.parametrize("seed", [0, 2])
def test_laplace_loo_matches_quadrature_of_the_exact_posterior(seed):
    X, y = logistic_data(40, seed)
    exact = quadrature_loo(X, y).sum()
    model = LaplaceLogisticRegression(**FIXED_PRIOR).fit(X, y)
    loo = model.loo(X, y)
    assert loo.method.startswith("exact LOO")
    assert abs(loo.elpd - exact) < 0.1
    assert abs(loo.elpd - exact) < 2 * loo.mcse_elpd
    assert loo.p == pytest.approx(loo.p_loo_i.values.sum())
    # Plain PSIS of the corrected Gaussian draws is optimistic on data this small.
    plain = model.loo(X, y, resolve=False)
    assert plain.elpd - exact > abs(loo.elpd - exact)


def test_loo_and_compare_are_deterministic_by_default():
    X, y = logistic_data(40, 1)
    laplace = LaplaceLogisticRegression(**FIXED_PRIOR).fit(X, y)
    map_fit = MAPLogisticRegression(**FIXED_PRIOR).fit(X, y)
    assert laplace.loo(X, y).elpd == laplace.loo(X, y).elpd
    first = compare({"laplace": laplace, "map": map_fit}, X, y)
    second = compare({"laplace": laplace, "map": map_fit}, X, y)
    assert first.equals(second)


def test_map_refits_every_row_exactly_when_cheap():
    X, y = logistic_data(30, 3)
    model = MAPLogisticRegression(**FIXED_PRIOR).fit(X, y)
    loo = approximate_loo(model, X, y)
    exact = np.concatenate(brute_force_map_loo(X, y, [[i] for i in range(30)], FIXED_PRIOR))
    np.testing.assert_allclose(loo.elpd_i.values, exact, atol=1e-6)
    assert loo.method == "exact LOO: 30 refits of the point estimate (cheap)"


def test_map_refits_the_high_leverage_rows(monkeypatch):
    X, y = logistic_data(30, 4)
    X[0, 0], y[0] = 6.0, 0  # far out, against the trend: high leverage
    model = MAPLogisticRegression(**FIXED_PRIOR).fit(X, y)
    monkeypatch.setattr(refit_loo, "REFIT_ALL_BUDGET", 0)
    one_step = approximate_loo(model, X, y, resolve=False)
    resolved = approximate_loo(model, X, y)
    exact = np.concatenate(brute_force_map_loo(X, y, [[i] for i in range(30)], FIXED_PRIOR))
    changed = resolved.elpd_i.values != one_step.elpd_i.values
    assert changed[0] and 0 < changed.sum() < 30
    assert f"exact refits (leverage > {LEVERAGE_FACTOR:g} x average)" in resolved.method
    np.testing.assert_allclose(resolved.elpd_i.values[changed], exact[changed], atol=1e-6)
    assert abs(resolved.elpd - exact.sum()) < abs(one_step.elpd - exact.sum())


def test_k_fold_replaces_loo_when_too_many_rows_are_flagged():
    X, y = logistic_data(40, 5)
    model = MAPLogisticRegression(**FIXED_PRIOR).fit(X, y)
    loo = approximate_loo(model, X, y, resolve=False)
    problem = RefitProblem(X, y, np.ones(40), model.result_, predictive="point")
    flagged = np.arange(40) < 12
    kfold = resolve_loo(
        loo, problem, flagged, np.random.default_rng(0), reason="test", max_refits=5
    )
    assert kfold.method.startswith(f"{refit_loo.N_FOLDS}-fold CV")
    folds = refit_loo._folds(y, refit_loo.N_FOLDS, np.random.default_rng(0))
    groups = [np.flatnonzero(folds == f) for f in range(refit_loo.N_FOLDS)]
    for rows, values in zip(groups, brute_force_map_loo(X, y, groups, FIXED_PRIOR), strict=True):
        np.testing.assert_allclose(kfold.elpd_i.values[rows], values, atol=1e-6)
    # p stays lpd - elpd with the full-data lpd.
    assert kfold.p == pytest.approx(loo.p + loo.elpd - kfold.elpd)


def test_laplace_refits_only_high_k_rows_on_larger_data(monkeypatch):
    X, y = logistic_data(60, 6, slope=3.0)
    X[0, 0], y[0] = 6.0, 0
    model = LaplaceLogisticRegression(**FIXED_PRIOR).fit(X, y)
    plain = model.loo(X, y, resolve=False)
    assert plain.pareto_k.values[0] > plain.good_k  # the outlier is flagged
    monkeypatch.setattr(refit_loo, "REFIT_ALL_BUDGET", 0)
    resolved = model.loo(X, y)
    flagged = plain.pareto_k.values > plain.good_k
    assert f"+ {flagged.sum()} exact refits (k > " in resolved.method
    assert resolved.pareto_k.values.max() <= plain.good_k and not resolved.warning
    # The PSIS k that triggered the refits is kept beside the refits' own k, with the
    # threshold they were flagged against.
    np.testing.assert_array_equal(resolved.psis_pareto_k, plain.pareto_k.values)
    assert resolved.psis_good_k == plain.good_k
    np.testing.assert_array_equal(resolved.elpd_i.values[~flagged], plain.elpd_i.values[~flagged])
    exact = quadrature_loo(X, y)
    error = np.abs(resolved.elpd_i.values - exact)[flagged]
    assert np.all(error < 0.1) and np.all(error < 3 * np.sqrt(resolved.variance_i[flagged]))


@pytest.mark.slow
def test_nuts_loo_refits_the_rows_psis_cannot_handle():
    from problogreg import PyMCLogisticRegression

    X, y = logistic_data(40, 6, slope=3.0)
    X[0, 0], y[0] = 6.0, 0
    model = PyMCLogisticRegression(
        **FIXED_PRIOR, draws=500, chains=2, random_state=1, progressbar=False
    ).fit(X, y)
    plain = model.loo(X, y, resolve=False)
    flagged = plain.pareto_k.values > plain.good_k
    assert flagged[0]
    resolved = model.loo(X, y)
    assert f"+ {flagged.sum()} exact refits" in resolved.method
    np.testing.assert_array_equal(resolved.psis_pareto_k, plain.pareto_k.values)
    assert resolved.psis_good_k == plain.good_k < 0.7  # 1000 draws: 1 - 1/log10(1000)
    assert resolved.pareto_k.values.max() <= resolved.good_k and not resolved.warning
    exact = quadrature_loo(X, y)
    error = np.abs(resolved.elpd_i.values - exact)[flagged]
    assert np.all(error < 3 * np.sqrt(resolved.variance_i[flagged]) + 0.02)
    assert abs(resolved.elpd - exact.sum()) < 3 * resolved.mcse_elpd + 0.05
    assert abs(resolved.elpd - exact.sum()) < abs(plain.elpd - exact.sum())


def test_report_leads_with_the_ranking_only_when_every_row_is_reliable():
    import pandas as pd

    from problogreg.report import ranking_lead

    table = pd.DataFrame(
        {
            "elpd_loo": [-30.0, -31.0, np.nan],
            "loo_method": ["exact LOO", "PSIS-LOO of NUTS draws", ""],
            "max_pareto_k": [np.nan, 0.4, np.nan],
            "pareto_k_warning": [False, False, False],
            "not_fitted_because": ["", "", "constant column"],
        },
        index=["LDA", "NUTS", "NaiveBayes"],
    )
    assert ranking_lead(table).startswith(
        "Ranking by ELPD-LOO (every estimate reliable): LDA > NUTS."
    )
    table.loc["NUTS", "loo_method"] = "10-fold CV (LOO unreliable at 50 of 100 rows: k > 0.70)"
    assert "K-fold CV (NUTS) scores fits to 9/10 of the data" in ranking_lead(table)
    table.loc["NUTS", ["max_pareto_k", "pareto_k_warning"]] = [1.3, True]
    table.loc["NUTS", "loo_method"] = "PSIS-LOO of NUTS draws"
    lead = ranking_lead(table)
    assert lead.startswith("No ranking: the ELPD-LOO of NUTS (max Pareto k 1.30 after PSIS-LOO")
    assert "Ranking by" not in lead and "LDA" in lead  # methods of every row are listed


@pytest.mark.parametrize("resolution", ["refits", "K-fold", "none"])
def test_study_diagnostics_state_the_psis_k_and_what_resolved_it(monkeypatch, resolution):
    from problogreg.study import _diagnostics

    X, y = logistic_data(60, 6, slope=3.0)
    X[0, 0], y[0] = 6.0, 0  # an outlier PSIS cannot handle
    models = {
        "Laplace": LaplaceLogisticRegression(**FIXED_PRIOR).fit(X, y),
        "MAP": MAPLogisticRegression(**FIXED_PRIOR).fit(X, y),
    }
    plain = models["Laplace"].loo(X, y, resolve=False)
    psis_k = plain.pareto_k.values.max()
    assert psis_k > plain.good_k
    monkeypatch.setattr(refit_loo, "REFIT_ALL_BUDGET", 0)  # refit the flagged rows only
    if resolution == "K-fold":
        monkeypatch.setattr(refit_loo, "default_max_refits", lambda n: 0)
    table = compare(models, X, y, resolve_loo=resolution != "none")
    diagnostics = _diagnostics({}, table, None)
    # MAP's LOO involves no importance sampling: no row.
    assert len(diagnostics) == 1 and list(diagnostics.columns) == ["value", "target", "resolution"]
    label, row = next(diagnostics.iterrows())
    assert row["value"] == pytest.approx(psis_k, rel=1e-12)
    method = table.loc["Laplace", "loo_method"]
    if resolution == "none":
        assert label == "Laplace max Pareto k (PSIS-LOO)"
        assert row["resolution"].startswith("none: PSIS-LOO kept; the estimate is unreliable")
        return
    assert label == "Laplace max Pareto k (PSIS-LOO, before resolution)"
    assert row["resolution"] == f"resolved by {method}"
    expected = {"refits": "exact refits (k > ", "K-fold": f"{refit_loo.N_FOLDS}-fold CV"}
    assert expected[resolution] in method
    # After resolution the refits' k pass: that k alone would read as a clean PSIS-LOO.
    assert table.loc["Laplace", "max_pareto_k"] <= plain.good_k < row["value"]


def test_laplace_loo_scores_its_own_predictive_when_no_correction_can_reach_the_posterior():
    # Separable classes under a wide prior: a long ridge, nothing like the Gaussian.
    X = np.array([[-2.0], [-1.5], [-1.0], [-0.5], [0.5], [1.0], [1.5], [2.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    wide = {"prior_scale": 100.0, "intercept_prior_scale": 100.0, "autoscale": False}
    model = LaplaceLogisticRegression(**wide).fit(X, y)
    loo = model.loo(X, y)
    assert loo.method.startswith("exact LOO: 8 refits of the Gaussian predictive (")
    assert not loo.warning and loo.mcse_elpd == 0.0
    # The PSIS estimate it replaces keeps its k.
    psis = model.loo(X, y, resolve=False)
    np.testing.assert_array_equal(loo.psis_pareto_k, psis.pareto_k.values)
    assert loo.psis_good_k == psis.good_k
    expected = [
        LaplaceLogisticRegression(**wide)
        .fit(np.delete(X, i, axis=0), np.delete(y, i))
        .predict_log_proba(X[i : i + 1])[0, y[i]]
        for i in range(8)
    ]
    np.testing.assert_allclose(loo.elpd_i.values, expected, atol=1e-6)
