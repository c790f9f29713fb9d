"""Tests of LaplaceLogisticRegression against independent references.

References: the Hessian (its inverse must be the covariance), Monte Carlo error
of draws, 2-D quadrature of the exact posterior of an intercept-plus-slope
model, Gauss-Hermite integrals of the logistic-normal predictive, and
simulation from the prior for interval coverage. Tolerances come from the
Monte Carlo standard errors they guard against, stated at each assertion.
"""

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from sklearn.utils.estimator_checks import check_estimator

from problogreg import LaplaceLogisticRegression, MAPLogisticRegression
from problogreg.core import hessian_form as forms
from problogreg.core.layout import helmert_basis
from problogreg.models.laplace import ApproximationCheck, UndefinedEvidenceError

#: Standard errors allowed for a Monte Carlo estimate (two-sided p ~ 7e-6 per check).
Z_MC = 4.5


def binary_data(n, seed, intercept=0.5, slope=2.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < special.expit(intercept + slope * x)).astype(int)
    return x[:, None], y


def multiclass_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    weights = np.array([[0.0, 0.0], [1.5, -1.0], [-1.0, 2.0]])
    proba = special.softmax(X @ weights.T, axis=1)
    y = np.array([rng.choice(3, p=p) for p in proba])
    return X, y


MULTICLASS_SETTINGS = [
    {"multiclass": "symmetric"},
    {"multiclass": "symmetric", "intercept_prior_scale": None},
    {"multiclass": "reference"},
]


def likelihood_cov(model):
    """T Sigma T^T for the symmetric model with flat intercepts (T from the Helmert basis)."""
    cov = model.posterior_cov_
    if model.multiclass_ != "symmetric" or np.isfinite(model.intercept_prior_scale_):
        return cov
    k = len(model.classes_)
    jac = np.zeros((cov.shape[0] + 1, cov.shape[0]))
    jac[:k, : k - 1] = helmert_basis(k)
    jac[k:, k - 1 :] = np.eye(cov.shape[0] - (k - 1))
    return jac @ cov @ jac.T


def flat_draws(tree, multiclass):
    """Posterior draws (S, n_lik) in the likelihood layout [b, w] from the DataTree."""
    intercept = tree.posterior["intercept"].values
    coef = tree.posterior["coef"].values
    if multiclass == "binary":
        return np.column_stack([intercept.reshape(-1), coef.reshape(-1, coef.shape[-1])])
    s = intercept.shape[0] * intercept.shape[1]
    intercept = intercept.reshape(s, -1)
    coef = coef.reshape(s, coef.shape[2], coef.shape[3])
    if multiclass == "reference":
        intercept, coef = intercept[:, 1:], coef[:, 1:]
    return np.column_stack([intercept, coef.reshape(s, -1)])


# -- the Gaussian ----------------------------------------------------------
@pytest.mark.parametrize("settings", [{}, *MULTICLASS_SETTINGS])
def test_covariance_is_inverse_hessian(settings):
    X, y = multiclass_data() if settings else binary_data(80, 0)
    model = LaplaceLogisticRegression(**settings).fit(X, y)
    p = len(model.posterior_mean_)
    assert model.hessian_.shape == model.posterior_cov_.shape == (p, p)
    np.testing.assert_allclose(model.posterior_cov_ @ model.hessian_, np.eye(p), atol=1e-10)
    np.testing.assert_array_equal(model.posterior_cov_, model.posterior_cov_.T)
    intercept, coef = model.intercept_, model.coef_
    map_fit = MAPLogisticRegression(**settings).fit(X, y)
    np.testing.assert_allclose(coef, map_fit.coef_, atol=1e-8)
    np.testing.assert_allclose(intercept, map_fit.intercept_, atol=1e-8)


def test_lbfgs_solver_still_uses_exact_hessian():
    X, y = binary_data(100, 1)
    newton = LaplaceLogisticRegression(solver="newton").fit(X, y)
    lbfgs = LaplaceLogisticRegression(solver="lbfgs", tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(lbfgs.posterior_cov_, newton.posterior_cov_, rtol=1e-5)


@pytest.mark.parametrize("settings", [{}, *MULTICLASS_SETTINGS])
def test_draws_have_stated_mean_and_covariance(settings):
    X, y = multiclass_data() if settings else binary_data(80, 0)
    model = LaplaceLogisticRegression(**settings).fit(X, y)
    tree = model.sample_posterior(draws=5000, chains=4, random_state=1)
    draws = flat_draws(tree, model.multiclass_)
    n_draws = len(draws)
    intercept, coef = model.intercept_, model.coef_
    if model.multiclass_ == "reference":
        intercept, coef = intercept[1:], coef[1:]
    mean = np.concatenate([intercept, coef.ravel()])
    cov = likelihood_cov(model)
    sd = np.sqrt(np.diag(cov))
    # Mean: each component's MC standard error is sd / sqrt(S).
    assert np.max(np.abs(draws.mean(axis=0) - mean) / (sd / np.sqrt(n_draws))) < Z_MC
    # Covariance: Var(x_i x_j) = S_ii S_jj + S_ij^2 for Gaussian draws.
    centred = draws - mean
    sample_cov = centred.T @ centred / n_draws
    se = np.sqrt((np.outer(sd**2, sd**2) + cov**2) / n_draws)
    assert np.max(np.abs(sample_cov - cov) / se) < Z_MC
    if settings.get("intercept_prior_scale", 10.0) is None:
        # Sum-to-zero intercepts: every draw sums to zero exactly.
        np.testing.assert_allclose(tree.posterior["intercept"].sum("class"), 0.0, atol=1e-12)


# -- against the exact posterior (2-D quadrature) ---------------------------
INTERCEPT_SD, SLOPE_SD = 5.0, 2.5


def exact_posterior(model, x, y, half_width=14.0, n_grid=301):
    """Exact posterior of (a, b) on a grid of +-half_width Laplace sds, by the trapezoid rule."""
    mean, sd = model.posterior_mean_, np.sqrt(np.diag(model.posterior_cov_))
    a = np.linspace(mean[0] - half_width * sd[0], mean[0] + half_width * sd[0], n_grid)
    b = np.linspace(mean[1] - half_width * sd[1], mean[1] + half_width * sd[1], n_grid)
    A, B = np.meshgrid(a, b, indexing="ij")
    eta = A[..., None] + B[..., None] * x
    log_joint = (
        -np.logaddexp(0, -(2 * y - 1) * eta).sum(-1)
        + stats.norm.logpdf(A, scale=INTERCEPT_SD)
        + stats.norm.logpdf(B, scale=SLOPE_SD)
    )
    peak = log_joint.max()
    density = np.exp(log_joint - peak)
    edge = max(density[0].max(), density[-1].max(), density[:, 0].max(), density[:, -1].max())
    assert edge < 1e-9, "the grid must cover the posterior"

    def integral(values):
        return np.trapezoid(np.trapezoid(values, b, axis=1), a)

    evidence = integral(density)

    def expect(values):
        return integral(values * density) / evidence

    mean = np.array([expect(A), expect(B)])
    sd = np.sqrt([expect((A - mean[0]) ** 2), expect((B - mean[1]) ** 2)])
    return {
        "log_evidence": np.log(evidence) + peak,
        "mean": mean,
        "sd": sd,
        "predictive": lambda x_new: np.array([expect(special.expit(A + B * v)) for v in x_new]),
    }


def fit_slope_model(x, y):
    return LaplaceLogisticRegression(
        prior_scale=SLOPE_SD, intercept_prior_scale=INTERCEPT_SD, autoscale=False
    ).fit(x, y)


def test_large_sample_laplace_matches_exact_posterior():
    X, y = binary_data(400, 0)
    model = fit_slope_model(X, y)
    exact = exact_posterior(model, X[:, 0], y)
    # Laplace errors shrink like 1/n: at n = 400 they are a few thousandths.
    assert abs(model.log_evidence_ - exact["log_evidence"]) < 0.02
    np.testing.assert_allclose(model.posterior_mean_, exact["mean"], atol=0.03)
    np.testing.assert_allclose(np.sqrt(np.diag(model.posterior_cov_)), exact["sd"], rtol=0.02)
    x_new = np.array([-2.0, 0.0, 1.5])
    np.testing.assert_allclose(
        model.predict_proba(x_new[:, None])[:, 1], exact["predictive"](x_new), atol=0.005
    )


def test_small_skewed_case_importance_sampling_corrects_laplace():
    X, y = binary_data(12, 1)
    model = fit_slope_model(X, y)
    exact = exact_posterior(model, X[:, 0], y)
    # Close but not equal: the skewed posterior is visibly non-Gaussian.
    gap = abs(model.log_evidence_ - exact["log_evidence"])
    assert 0.02 < gap < 0.5
    check = model.check_approximation(X, y, draws=4000, random_state=0)
    assert check.correction_reliable
    # The mode is off the exact mean by more than agreement() allows: not usable as is.
    exact_shift = np.max(np.abs(model.posterior_mean_ - exact["mean"]) / exact["sd"])
    assert exact_shift > 0.1 and not check.gaussian_usable
    assert check.max_mean_shift_sd == pytest.approx(exact_shift, rel=0.3)
    assert "Gaussian not usable as is" in check.verdict and "reliable" in check.verdict
    laplace_sd = np.sqrt(np.diag(model.posterior_cov_))
    laplace_error = np.abs(model.posterior_mean_ - exact["mean"])
    corrected_error = np.abs(check.mean - exact["mean"])
    assert np.all(laplace_error > 5 * exact["sd"] / np.sqrt(check.ess))  # a real bias
    assert np.all(corrected_error < 0.5 * laplace_error)
    assert np.all(np.abs(check.sd - exact["sd"]) < np.abs(laplace_sd - exact["sd"]))


# -- predictive --------------------------------------------------------------
def gauss_hermite_predictive(mean, sd, order=80):
    """E[sigma(eta)], eta ~ N(mean, sd^2), and its sd, by Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    weights = weights / weights.sum()
    values = special.expit(mean[:, None] + sd[:, None] * nodes)
    first = values @ weights
    return first, np.sqrt(values**2 @ weights - first**2)


def test_binary_probit_and_mc_match_the_gaussian_integral():
    X, y = binary_data(30, 2)
    model = LaplaceLogisticRegression().fit(X, y)
    X_new = np.linspace(-4, 4, 41)[:, None]
    design = np.column_stack([np.ones(len(X_new)), X_new])
    mean = design @ model.posterior_mean_
    sd = np.sqrt(np.einsum("ij,jk,ik->i", design, model.posterior_cov_, design))
    exact, spread = gauss_hermite_predictive(mean, sd)
    draws = 20000
    mc = model.predict_proba(X_new, method="mc", draws=draws, random_state=3)[:, 1]
    assert np.max(np.abs(mc - exact) / (spread / np.sqrt(draws))) < Z_MC
    probit = model.predict_proba(X_new)[:, 1]
    np.testing.assert_allclose(probit, special.expit(mean / np.sqrt(1 + np.pi * sd**2 / 8)))
    # The probit approximation of the logistic-normal integral is good to ~0.02.
    assert np.max(np.abs(probit - exact)) < 0.02
    np.testing.assert_allclose(model.predict_proba(X_new, method="map")[:, 1], special.expit(mean))
    np.testing.assert_array_equal(
        model.predict_proba(X_new, method="mc", random_state=5),
        model.predict_proba(X_new, method="mc", random_state=5),
    )


@pytest.mark.parametrize("settings", MULTICLASS_SETTINGS)
def test_multiclass_probit_agrees_with_monte_carlo(settings):
    X, y = multiclass_data(60)
    model = LaplaceLogisticRegression(**settings).fit(X, y)
    X_new = np.random.default_rng(1).normal(size=(200, 2)) * 2
    mc = model.predict_proba(X_new, method="mc", draws=40000, random_state=0)
    probit = model.predict_proba(X_new)
    plug_in = model.predict_proba(X_new, method="map")
    np.testing.assert_allclose(probit.sum(axis=1), 1.0)
    # MC error <= 0.5 / sqrt(40000) = 0.0025; the pairwise approximation itself
    # is good to ~0.03 here, and much closer to the predictive than the plug-in.
    assert np.max(np.abs(probit - mc)) < 0.035
    assert np.mean(np.abs(probit - mc)) < 0.5 * np.mean(np.abs(plug_in - mc))


def test_binary_interval_holds_prob_of_the_gaussian_posterior():
    X, y = binary_data(40, 3)
    model = LaplaceLogisticRegression().fit(X, y)
    X_new = np.array([[-2.0], [0.0], [0.7], [3.0]])
    lower, upper = model.predict_interval(X_new, prob=0.8)
    tree = model.sample_posterior(draws=5000, chains=4, random_state=7)
    draws = flat_draws(tree, "binary")
    p1 = special.expit(draws[:, :1] + draws[:, 1:] @ X_new.T)
    inside = ((lower[:, 1] <= p1) & (p1 <= upper[:, 1])).mean(axis=0)
    se = np.sqrt(0.8 * 0.2 / len(draws))
    assert np.max(np.abs(inside - 0.8)) < Z_MC * se
    np.testing.assert_allclose(lower[:, 0], 1 - upper[:, 1])


def test_multiclass_interval_holds_prob_of_the_posterior():
    X, y = multiclass_data()
    model = LaplaceLogisticRegression().fit(X, y)
    X_new = np.array([[-1.0, 1.0], [0.0, 0.0], [2.0, -0.5]])
    lower, upper = model.predict_interval(X_new, prob=0.9, draws=4000, random_state=0)
    tree = model.sample_posterior(draws=5000, chains=4, random_state=11)
    intercept = tree.posterior["intercept"].values.reshape(-1, 3)
    coef = tree.posterior["coef"].values.reshape(-1, 3, 2)
    proba = special.softmax(np.einsum("nd,skd->snk", X_new, coef) + intercept[:, None], axis=2)
    inside = ((lower <= proba) & (proba <= upper)).mean(axis=0)
    # Error of two 5%-quantiles from 4000 draws plus that of the 20000 check draws.
    se = np.sqrt(2 * 0.05 * 0.95 / 4000 + 0.9 * 0.1 / len(proba))
    assert np.max(np.abs(inside - 0.9)) < Z_MC * se


def test_interval_coverage_in_simulation_from_the_prior():
    rng = np.random.default_rng(0)
    X_new = np.array([[-1.5, 0.5], [0.0, 0.0], [1.0, 1.0], [2.0, -1.0]])
    hits = []
    for _ in range(400):
        theta = rng.normal(size=3)
        X = rng.normal(size=(80, 2))
        y = (rng.random(80) < special.expit(theta[0] + X @ theta[1:])).astype(int)
        if y.min() == y.max():
            continue
        model = LaplaceLogisticRegression(
            prior_scale=1.0, intercept_prior_scale=1.0, autoscale=False
        ).fit(X, y)
        lower, upper = model.predict_interval(X_new)
        truth = special.expit(theta[0] + X_new @ theta[1:])
        hits.append(np.mean((lower[:, 1] <= truth) & (truth <= upper[:, 1])))
    hits = np.array(hits)
    # With theta drawn from the prior, the exact posterior interval covers with
    # probability 0.94; the Laplace one should too, within the simulation error.
    assert abs(hits.mean() - 0.94) < Z_MC * hits.std() / np.sqrt(len(hits))


def test_predict_is_argmax_of_default_proba_and_decision_is_its_logit():
    X, y = binary_data(50, 4)
    model = LaplaceLogisticRegression().fit(X, y)
    proba = model.predict_proba(X)
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(proba, axis=1)])
    np.testing.assert_allclose(model.decision_function(X), special.logit(proba[:, 1]))
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X)), proba)


# -- evidence and empirical Bayes ---------------------------------------------
def test_optimize_prior_maximises_the_evidence():
    X, y = binary_data(60, 5)
    best = LaplaceLogisticRegression(optimize_prior=True).fit(X, y)
    chosen = best.evidence_prior_scale_
    np.testing.assert_allclose(best.prior_scale_, chosen / X.std(axis=0))
    for scale in [2.5, 0.5 * chosen, 0.98 * chosen, 1.02 * chosen, 2 * chosen]:
        other = LaplaceLogisticRegression(prior_scale=scale).fit(X, y)
        assert other.log_evidence_ <= best.log_evidence_ + 1e-9
    refit = LaplaceLogisticRegression(prior_scale=chosen).fit(X, y)
    np.testing.assert_allclose(refit.log_evidence_, best.log_evidence_, rtol=1e-10)


def test_optimize_prior_recovers_a_known_scale():
    rng = np.random.default_rng(0)
    n, d, scale = 4000, 40, 0.5
    weights = rng.normal(scale=scale, size=d)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < special.expit(0.3 + X @ weights)).astype(int)
    model = LaplaceLogisticRegression(optimize_prior=True, autoscale=False).fit(X, y)
    # A scale estimated from d normal coefficients has relative sd 1 / sqrt(2 d).
    assert abs(model.evidence_prior_scale_ / scale - 1) < Z_MC / np.sqrt(2 * d)
    realised = np.sqrt(np.mean(weights**2))
    assert abs(model.evidence_prior_scale_ / realised - 1) < 0.1
    assert 0 < model.effective_n_params_ <= len(model.posterior_mean_)


def test_effective_n_params_counts_well_determined_parameters():
    X, y = binary_data(200, 6)
    strong = LaplaceLogisticRegression(prior_scale=1e-3).fit(X, y)
    weak = LaplaceLogisticRegression(prior_scale=1e3, intercept_prior_scale=1e3).fit(X, y)
    # gamma = p - sum_j lambda_j Sigma_jj: a tight prior leaves ~only the intercept.
    assert abs(strong.effective_n_params_ - 1) < 0.01
    assert abs(weak.effective_n_params_ - 2) < 0.01


def test_corrected_summary_and_predictions_follow_the_exact_posterior():
    X, y = binary_data(12, 1)
    model = fit_slope_model(X, y)
    exact = exact_posterior(model, X[:, 0], y)
    with pytest.raises(ValueError, match="check_approximation"):
        model.summary(method="corrected")
    model.check_approximation(X, y, draws=4000, random_state=0)
    gaussian = model.summary()
    corrected = model.summary(ci_prob=0.9, method="corrected")
    assert list(corrected.columns) == ["mean", "sd", "ci_lower", "ci_upper"]
    assert list(gaussian.columns) == ["mean", "sd", "ci_lower", "ci_upper"]  # no z, p
    corrected_error = np.abs(corrected["mean"].to_numpy() - exact["mean"])
    gaussian_error = np.abs(gaussian["mean"].to_numpy() - exact["mean"])
    assert np.all(corrected_error < 0.5 * gaussian_error)
    np.testing.assert_allclose(corrected["sd"].to_numpy(), exact["sd"], rtol=0.1)
    assert np.all(corrected["ci_lower"] < corrected["mean"])
    assert np.all(corrected["mean"] < corrected["ci_upper"])
    x_new = np.array([-2.0, 0.0, 1.5])
    exact_proba = exact["predictive"](x_new)
    corrected_proba = model.predict_proba(x_new[:, None], method="corrected")[:, 1]
    probit_proba = model.predict_proba(x_new[:, None])[:, 1]
    assert np.all(np.abs(corrected_proba - exact_proba) < 0.01)
    assert np.max(np.abs(corrected_proba - exact_proba)) < np.max(
        np.abs(probit_proba - exact_proba)
    )
    lower, upper = model.predict_interval(x_new[:, None], prob=0.9, method="corrected")
    assert np.all((lower[:, 1] < corrected_proba) & (corrected_proba < upper[:, 1]))
    odds = model.summary(exponentiate=True)
    draws = model.posterior_.sample(200_000, np.random.default_rng(0))
    np.testing.assert_allclose(odds["mean"], np.exp(draws).mean(axis=0), rtol=0.02)
    np.testing.assert_allclose(odds["sd"], np.exp(draws).std(axis=0), rtol=0.05)
    model.fit(X, y)  # a new fit forgets the old check
    with pytest.raises(ValueError, match="check_approximation"):
        model.predict_proba(X, method="corrected")


def test_flat_prior_has_no_evidence():
    X, y = binary_data(60, 7)
    model = LaplaceLogisticRegression(intercept_prior_scale=None).fit(X, y)
    with pytest.raises(UndefinedEvidenceError, match="flat prior"):
        model.log_evidence_  # noqa: B018
    assert not hasattr(model, "log_evidence_")
    with pytest.raises(ValueError, match="undefined under a flat or Jeffreys prior"):
        LaplaceLogisticRegression(prior_scale=None, optimize_prior=True).fit(X, y)


# -- PSIS check and LOO ---------------------------------------------------------
def test_check_approximation_passes_on_large_n():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(5000, 3))
    y = (rng.random(5000) < special.expit(X @ [1.0, -0.5, 0.2])).astype(int)
    model = LaplaceLogisticRegression().fit(X, y)
    check = model.check_approximation(X, y, random_state=0)
    assert isinstance(check, ApproximationCheck)
    assert check.pareto_k < 0.5 and check.correction_reliable and check.gaussian_usable
    assert str(check).startswith("Gaussian usable as is")
    assert check.mean.shape == check.sd.shape == model.posterior_mean_.shape
    assert check.ess > 0.5 * check.n_draws
    table = check.to_frame()
    assert list(table.index) == ["intercept", "x0", "x1", "x2"]


def test_check_approximation_flags_nearly_separable_data():
    # Separable classes, kept finite only by a wide prior: the posterior is a
    # long ridge, nothing like the Gaussian at its mode.
    X = np.array([[-2.0], [-1.5], [-1.0], [-0.5], [0.5], [1.0], [1.5], [2.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    model = LaplaceLogisticRegression(prior_scale=100.0, intercept_prior_scale=100.0).fit(X, y)
    # k-hat of such a heavy tail is itself noisy (a run may miss the extreme
    # draws), so judge the median of five independent checks.
    checks = [model.check_approximation(X, y, random_state=seed) for seed in range(5)]
    assert np.median([check.pareto_k for check in checks]) > 0.7
    flagged = [check for check in checks if not check.correction_reliable]
    assert len(flagged) >= 3
    assert all("NUTS" in check.verdict for check in flagged)


def test_loo_is_an_elpd_that_compare_accepts():
    X, y = binary_data(60, 9)
    good = LaplaceLogisticRegression().fit(X, y).loo(X, y, random_state=0)
    null = LaplaceLogisticRegression().fit(np.zeros_like(X), y).loo(np.zeros_like(X), y)
    assert isinstance(good, az.ELPDDataLOO)
    assert good.approx_posterior
    assert good.elpd_i.sizes["obs_id"] == len(y)
    table = az.compare({"slope": good, "null": null}, round_to="none")
    assert list(table.index) == ["slope", "null"]


def test_loo_matches_brute_force_leave_one_out():
    X, y = binary_data(40, 10)
    settings = {"prior_scale": SLOPE_SD, "intercept_prior_scale": INTERCEPT_SD}
    loo = LaplaceLogisticRegression(**settings).fit(X, y).loo(X, y, draws=2000, random_state=0)
    exact = 0.0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        model = LaplaceLogisticRegression(**settings).fit(X[keep], y[keep])
        exact += np.log(model.predict_proba(X[i : i + 1], method="mc", draws=20000)[0, y[i]])
    # Pointwise PSIS errors are ~0.01 each; 40 of them stay well within 3 * se.
    assert abs(loo.elpd - exact) < 0.25 * loo.se


# -- DataTree --------------------------------------------------------------------
def test_datatree_binary_dims_coords_and_log_likelihood():
    X, y = binary_data(30, 11)
    frame = pd.DataFrame(X, columns=["dose"])
    labels = np.where(y == 1, "yes", "no")
    model = LaplaceLogisticRegression().fit(frame, labels)
    tree = model.sample_posterior(draws=50, chains=3, random_state=0, X=frame, y=labels)
    assert tree.posterior["coef"].dims == ("chain", "draw", "feature")
    assert tree.posterior["intercept"].dims == ("chain", "draw")
    assert list(tree.posterior["feature"].values) == ["dose"]
    assert tree.log_likelihood["y"].dims == ("chain", "draw", "obs_id")
    assert list(tree.observed_data["y"].values) == list(labels)
    coef = tree.posterior["coef"].values[..., 0]
    eta = tree.posterior["intercept"].values[..., None] + coef[..., None] * X[:, 0]
    expected = -np.logaddexp(0, -np.where(y == 1, 1, -1) * eta)
    np.testing.assert_allclose(tree.log_likelihood["y"].values, expected, rtol=1e-12)
    assert "log_likelihood" not in model.sample_posterior(draws=5).children


@pytest.mark.parametrize("multiclass", ["symmetric", "reference"])
def test_datatree_multiclass_dims_coords(multiclass):
    X, y = multiclass_data()
    labels = np.array(["a", "b", "c"])[y]
    model = LaplaceLogisticRegression(multiclass=multiclass).fit(X, labels)
    tree = model.sample_posterior(draws=40, chains=2, random_state=0, X=X, y=labels)
    assert tree.posterior["coef"].dims == ("chain", "draw", "class", "feature")
    assert tree.posterior["intercept"].dims == ("chain", "draw", "class")
    assert list(tree.posterior["class"].values) == ["a", "b", "c"]
    coef = tree.posterior["coef"].values
    intercept = tree.posterior["intercept"].values
    logits = np.einsum("nd,cskd->csnk", X, coef) + intercept[:, :, None, :]
    log_proba = logits - special.logsumexp(logits, axis=3, keepdims=True)
    expected = np.take_along_axis(log_proba, y[None, None, :, None], axis=3)[..., 0]
    np.testing.assert_allclose(tree.log_likelihood["y"].values, expected, atol=1e-12)
    if multiclass == "reference":
        assert np.all(coef[:, :, 0] == 0) and np.all(intercept[:, :, 0] == 0)
    summary = az.summary(tree, var_names=["coef"], kind="stats")
    assert len(summary) == 3 * 2


# -- estimator contract and bad inputs -----------------------------------------------
@pytest.mark.parametrize("optimize_prior", [False, True])
def test_check_estimator(optimize_prior):
    check_estimator(LaplaceLogisticRegression(optimize_prior=optimize_prior))


def test_bad_inputs_give_clear_errors():
    X, y = binary_data(30, 12)
    model = LaplaceLogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="method must be one of"):
        model.predict_proba(X, method="laplace")
    with pytest.raises(ValueError, match="prob must be"):
        model.predict_interval(X, prob=94)
    with pytest.raises(ValueError, match="draws must be an integer >= 1; got 0"):
        model.sample_posterior(draws=0)
    with pytest.raises(ValueError, match="pass the data for the log-likelihood by keyword"):
        model.sample_posterior(X)
    with pytest.raises(ValueError, match="Pass X and y together"):
        model.sample_posterior(X=X)
    with pytest.raises(ValueError, match="not fitted on: 7"):
        model.sample_posterior(X=X, y=np.full(len(y), 7))
    with pytest.raises(ValueError, match="one label per row"):
        model.check_approximation(X, y[:-1])
    with pytest.raises(ValueError, match="draws must be an integer >= 100"):
        model.check_approximation(X, y, draws=10)
    with pytest.raises(ValueError, match="features"):
        model.predict_interval(np.ones((3, 2)))
    with pytest.raises(MemoryError, match=r"4000 draws of 100000 numbers"):
        model.sample_posterior(draws=1000, chains=4, X=np.zeros((100_000, 1)), y=np.zeros(100_000))


def test_memory_guard_refuses_huge_posteriors_before_solving():
    """A flat prior has no dual (Woodbury) form: 8201 parameters need dense matrices."""
    X = np.random.default_rng(0).normal(size=(4, 8200))
    with pytest.raises(MemoryError, match="8201 parameters"):
        LaplaceLogisticRegression(prior_scale=None).fit(X, [0, 1, 0, 1])


def test_wide_posterior_is_kept_in_dual_form():
    """With a proper prior, 8201 parameters and 4 samples need only a 4 x 4 dual matrix."""
    X = np.random.default_rng(0).normal(size=(4, 8200))
    model = LaplaceLogisticRegression().fit(X, [0, 1, 0, 1])
    assert model.hessian_ is None
    assert model.posterior_.hessian.dual_cholesky.shape == (4, 4)
    assert np.all(np.isfinite(model.predict_interval(X[:2])[0]))


def test_memory_guard_names_both_forms(monkeypatch):
    """When neither the dense nor the dual form fits, the error names both sizes."""
    monkeypatch.setattr(forms, "DENSE_HESSIAN_MAX_BYTES", 10**6)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 400)), np.arange(400) % 2
    with pytest.raises(MemoryError, match=r"401 parameters.*400 x 400 matrix") as raised:
        LaplaceLogisticRegression().fit(X, y)
    # The remedy it names works at this size: the MAP's default solver forms no Hessian.
    assert "MAPLogisticRegression for a point estimate" in str(raised.value)
    point = MAPLogisticRegression().fit(X, y)
    assert point.converged_ and point.result_.hessian is None


def test_integer_weights_equal_repeated_rows():
    X, y = binary_data(40, 13)
    weights = np.arange(40) % 3 + 1
    weighted = LaplaceLogisticRegression().fit(X, y, sample_weight=weights)
    repeated = LaplaceLogisticRegression().fit(np.repeat(X, weights, axis=0), np.repeat(y, weights))
    # autoscale uses the weighted sd, so both fits have the same prior.
    np.testing.assert_allclose(weighted.posterior_cov_, repeated.posterior_cov_, rtol=1e-8)
    np.testing.assert_allclose(weighted.log_evidence_, repeated.log_evidence_, rtol=1e-10)
    check_weighted = weighted.check_approximation(X, y, random_state=0, sample_weight=weights)
    check_repeated = repeated.check_approximation(
        np.repeat(X, weights, axis=0), np.repeat(y, weights), random_state=0
    )
    np.testing.assert_allclose(check_weighted.mean, check_repeated.mean, rtol=1e-8)
