"""Regression tests for the posterior protocol after the restructuring.

Covers: ``agreement`` and ``coefficient_forest`` on any Bayesian model (LDA
included), ``loss_surface``, the shared ``sample_posterior`` argument checks and
random-state policy, weighted leave-one-out (generative: exact closed form;
Laplace: PSIS), ``compare`` (deterministic, fingerprint-checked, weighted), the
Newton solver's L-BFGS rescue, and the public ``MAPResult``.

Every reference is computed independently: brute-force refits, closed forms
written here from the textbook formulas (scipy densities), or numpy.
"""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
from scipy import special, stats

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from sklearn.exceptions import ConvergenceWarning

import problogreg as plr
from problogreg import plots
from problogreg.core.minimize import minimize, warn_not_converged
from problogreg.posterior.draws import gaussian_marginal_summary, weighted_draw_summary

NUTS_SETTINGS = {"draws": 100, "tune": 100, "chains": 2, "cores": 1, "progressbar": False}


# -- data --------------------------------------------------------------------------
def binary_data(n=60, d=2, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    beta = np.linspace(1.0, -0.7, d)
    y = (X @ beta + 0.3 + rng.logistic(size=n) > 0).astype(int)
    return X, y


def three_class_data(n=90, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = np.digitize(X[:, 0] + 0.5 * rng.normal(size=n), [-0.5, 0.5])
    return X, y


def binary_features(y, d=3, seed=4):
    """Binary features whose frequency depends on the class (for Bernoulli Naive Bayes)."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(len(y), d)) < 0.3 + 0.4 * y[:, None]).astype(float)


def float_weights(n, seed=7):
    return np.random.default_rng(seed).uniform(0.5, 3.0, size=n)


@pytest.fixture(scope="module")
def binary():
    return binary_data()


@pytest.fixture(scope="module")
def lda_and_laplace(binary):
    X, y = binary
    return plr.SharedCovarianceGaussian().fit(X, y), plr.LaplaceLogisticRegression().fit(X, y)


# -- independent references ------------------------------------------------------------
def log_conditional(log_joint, k):
    """log p(y = k | x) from the joint log predictive over classes (K,)."""
    return log_joint[k] - special.logsumexp(log_joint)


def gaussian_nb_loo_reference(X, codes, w, n_classes, kappa0=0.01, nu0=3.0, alpha0=1.0):
    r"""w_i log p(y_i | x_i, D_{-i}) of the Normal-Inverse-Gamma Naive Bayes, from scratch.

    Textbook conjugate update (Murphy 2007) with row i's weight set to 0; the
    data-scaled prior (centre = weighted grand mean, IG rate (nu0 - 2) var / 2)
    keeps its full-data value, as the package documents. The predictive of each
    feature is a Student-t (scipy), the class predictive the Dirichlet mean.
    """
    m0 = np.average(X, axis=0, weights=w)
    var = np.average((X - m0) ** 2, axis=0, weights=w)
    a0, b0 = nu0 / 2, (nu0 - 2) * var / 2
    out = np.empty(len(codes))
    for i in range(len(codes)):
        s = w.copy()
        s[i] = 0.0
        log_joint = np.empty(n_classes)
        for k in range(n_classes):
            sk = s * (codes == k)
            nk = sk.sum()
            xbar = sk @ X / nk
            kappa = kappa0 + nk
            mean = (kappa0 * m0 + nk * xbar) / kappa
            shape = a0 + nk / 2
            rate = b0 + sk @ (X - xbar) ** 2 / 2 + kappa0 * nk * (xbar - m0) ** 2 / (2 * kappa)
            scale = np.sqrt(rate * (kappa + 1) / (shape * kappa))
            log_class = np.log((alpha0 + nk) / (n_classes * alpha0 + s.sum()))
            log_x = stats.t.logpdf(X[i], df=2 * shape, loc=mean, scale=scale).sum()
            log_joint[k] = log_class + log_x
        out[i] = w[i] * log_conditional(log_joint, codes[i])
    return out


def lda_loo_reference(X, codes, w, n_classes, kappa0=0.01, alpha0=1.0):
    r"""w_i log p(y_i | x_i, D_{-i}) of the Normal-Inverse-Wishart LDA, from scratch.

    Shared covariance IW(Psi, nu), class means N(m_k, Sigma / kappa_k), with
    the documented defaults nu0 = d + 2, Psi0 = (nu0 - d - 1) diag(var x),
    m0 = grand mean (full-data, weighted). The class-conditional predictive is
    a multivariate t (``scipy.stats.multivariate_t``).
    """
    d = X.shape[1]
    m0 = np.average(X, axis=0, weights=w)
    var = np.average((X - m0) ** 2, axis=0, weights=w)
    nu0 = d + 2
    psi0 = np.diag((nu0 - d - 1) * var)
    out = np.empty(len(codes))
    for i in range(len(codes)):
        s = w.copy()
        s[i] = 0.0
        psi = psi0.copy()
        classes = []
        for k in range(n_classes):
            sk = s * (codes == k)
            nk = sk.sum()
            xbar = sk @ X / nk
            residual = X - xbar
            kappa = kappa0 + nk
            psi += (residual * sk[:, None]).T @ residual
            psi += kappa0 * nk / kappa * np.outer(xbar - m0, xbar - m0)
            classes.append((nk, kappa, (kappa0 * m0 + nk * xbar) / kappa))
        dof = nu0 + s.sum() - d + 1
        log_joint = np.empty(n_classes)
        for k, (nk, kappa, mean) in enumerate(classes):
            shape = psi * (kappa + 1) / (kappa * dof)
            log_class = np.log((alpha0 + nk) / (n_classes * alpha0 + s.sum()))
            log_x = stats.multivariate_t.logpdf(X[i], loc=mean, shape=shape, df=dof)
            log_joint[k] = log_class + log_x
        out[i] = w[i] * log_conditional(log_joint, codes[i])
    return out


def bernoulli_nb_loo_reference(X, codes, w, n_classes, beta0=1.0, alpha0=1.0):
    """w_i log p(y_i | x_i, D_{-i}) of the Beta-Bernoulli Naive Bayes, from scratch.

    p(x_j = 1 | k, D) = (beta0 + c_kj) / (2 beta0 + N_k); no data-scaled prior.
    """
    out = np.empty(len(codes))
    for i in range(len(codes)):
        s = w.copy()
        s[i] = 0.0
        log_joint = np.empty(n_classes)
        for k in range(n_classes):
            sk = s * (codes == k)
            nk = sk.sum()
            prob = (beta0 + sk @ X) / (2 * beta0 + nk)
            log_x = np.sum(X[i] * np.log(prob) + (1 - X[i]) * np.log1p(-prob))
            log_joint[k] = np.log((alpha0 + nk) / (n_classes * alpha0 + s.sum())) + log_x
        out[i] = w[i] * log_conditional(log_joint, codes[i])
    return out


def binary_log_likelihood(intercept, coef, X, y):
    """log p(y_i | x_i) of a logistic model; intercept (...,), coef (..., d)."""
    eta = np.asarray(intercept)[..., None] + np.asarray(coef) @ X.T
    return -np.logaddexp(0.0, -(2 * y - 1) * eta)


# -- 1. agreement / 2. coefficient_forest with LDA ---------------------------------------
def test_agreement_accepts_lda_against_laplace(binary, lda_and_laplace):
    """Bug: agreement(lda, laplace) raised TypeError; it must compare the same parameters."""
    X, y = binary
    lda, laplace = lda_and_laplace
    result = plr.agreement(lda, laplace)
    wide = plr.LaplaceLogisticRegression(prior_scale=10.0).fit(X, y)
    reference = plr.agreement(laplace, wide)
    assert list(result.table.index) == list(reference.table.index)
    assert list(result.table.index) == ["intercept", "coef[x0]", "coef[x1]"]
    assert np.all(np.isfinite(result.table.to_numpy()))
    assert np.isfinite(result.kl_divergence)
    # The LDA side is the LDA posterior: its mean is that of LDA's own draws.
    lda_tree = lda.sample_posterior(draws=4000, chains=1, random_state=0)
    np.testing.assert_allclose(
        result.table.loc["coef[x0]", "mean_a"],
        lda_tree.posterior["coef"].values[..., 0].mean(),
        rtol=1e-12,
    )


def test_coefficient_forest_accepts_lda_and_laplace(lda_and_laplace):
    """Bug: coefficient_forest({"LDA": lda, ...}) raised TypeError; it must draw a Figure."""
    lda, laplace = lda_and_laplace
    fig = plots.coefficient_forest({"LDA": lda, "Laplace": laplace})
    assert isinstance(fig, Figure)
    plt.close(fig)


def test_coefficient_forest_refuses_gaussian_naive_bayes(binary, lda_and_laplace):
    """Gaussian Naive Bayes has no linear coefficients: a ValueError that says 'coef'."""
    X, y = binary
    _, laplace = lda_and_laplace
    with pytest.raises(ValueError, match="coef"):
        plots.coefficient_forest({"NB": plr.NaiveBayes().fit(X, y), "Laplace": laplace})


# -- 3. loss_surface ------------------------------------------------------------------
def test_loss_surface_refuses_out_of_range_feature(binary):
    """feature=10 on 2 features is a ValueError naming the valid range."""
    X, y = binary
    model = plr.MAPLogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=r"out of range.*2 features.*0\.\.1"):
        plots.loss_surface(model, X, y, feature=10)


def test_loss_surface_refuses_model_without_result(binary):
    """A model with no MAP fit (Naive Bayes) is a TypeError saying it has no result_."""
    X, y = binary
    with pytest.raises(TypeError, match="no result_"):
        plots.loss_surface(plr.NaiveBayes().fit(X, y), X, y)


def test_loss_surface_curve_is_the_negative_log_posterior(binary):
    """The drawn curve is -sum log p + 0.5 sum theta^2/s^2 (numpy), minimal at the fit."""
    X, y = binary
    model = plr.MAPLogisticRegression(
        prior_scale=1.0, intercept_prior_scale=5.0, autoscale=False
    ).fit(X, y)
    fig = plots.loss_surface(model, X, y, feature=1)
    grid, curve = (np.asarray(v) for v in fig.axes[0].lines[0].get_data())
    fitted = model.coef_[0, 1]
    spacing = grid[1] - grid[0]
    assert abs(grid[np.argmin(curve)] - fitted) <= spacing
    assert grid[0] < fitted < grid[-1]
    for index in (0, 150):
        coef = model.coef_[0].copy()
        coef[1] = grid[index]
        intercept = model.intercept_[0]
        nll = -binary_log_likelihood(intercept, coef, X, y).sum()
        penalty = 0.5 * (intercept**2 / 5.0**2 + np.sum(coef**2 / 1.0**2))
        np.testing.assert_allclose(curve[index], nll + penalty, rtol=1e-10)
    plt.close(fig)


# -- 4. sample_posterior argument checks --------------------------------------------------
@pytest.mark.parametrize(
    "make", [plr.NaiveBayes, plr.SharedCovarianceGaussian], ids=["naive_bayes", "lda"]
)
def test_generative_sample_posterior_rejects_zero_draws(binary, make):
    """Generative sample_posterior(draws=0) is a ValueError from the shared check."""
    X, y = binary
    with pytest.raises(ValueError, match="draws must be an integer >= 1"):
        make().fit(X, y).sample_posterior(draws=0)


@pytest.mark.parametrize(
    "make",
    [plr.NaiveBayes, plr.SharedCovarianceGaussian, plr.LaplaceLogisticRegression],
    ids=["naive_bayes", "lda", "laplace"],
)
def test_sample_posterior_asks_for_data_by_keyword(binary, make):
    """sample_posterior(X, y) positionally: a ValueError saying to pass X=..., y=...."""
    X, y = binary
    model = make().fit(X, y)
    with pytest.raises(ValueError, match=r"by keyword: X=\.\.\., y=\.\.\."):
        model.sample_posterior(X, y)
    tree = model.sample_posterior(draws=10, chains=2, random_state=0, X=X, y=y)
    assert tree.log_likelihood["y"].dims == ("chain", "draw", "obs_id")
    assert tree.log_likelihood["y"].shape == (2, 10, len(y))


def test_sample_posterior_log_likelihood_matches_its_draws(binary):
    """The log_likelihood group is log p(y_i | x_i, theta_s) of the tree's own draws."""
    X, y = binary
    laplace = plr.LaplaceLogisticRegression().fit(X, y)
    tree = laplace.sample_posterior(draws=50, chains=2, random_state=3, X=X, y=y)
    expected = binary_log_likelihood(
        tree.posterior["intercept"].values, tree.posterior["coef"].values, X, y
    )
    np.testing.assert_allclose(tree.log_likelihood["y"].values, expected, rtol=1e-10)

    nb = plr.NaiveBayes().fit(X, y)
    tree = nb.sample_posterior(draws=50, chains=2, random_state=3, X=X, y=y)
    post = tree.posterior
    mean, variance = post["mean"].values, post["variance"].values  # (chain, draw, K, d)
    log_x = stats.norm.logpdf(
        X[None, None, :, None, :], mean[:, :, None], np.sqrt(variance[:, :, None])
    ).sum(axis=-1)
    log_joint = log_x + np.log(post["class_prior"].values)[:, :, None, :]
    log_cond = log_joint - special.logsumexp(log_joint, axis=-1, keepdims=True)
    expected = np.take_along_axis(log_cond, y[None, None, :, None], axis=-1)[..., 0]
    # atol: the reference's logsumexp rounds log p near 0 to ~1e-16 absolute.
    np.testing.assert_allclose(tree.log_likelihood["y"].values, expected, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    ("make", "bernoulli"),
    [
        (plr.NaiveBayes, False),
        (lambda: plr.NaiveBayes(likelihood="bernoulli"), True),
        (plr.SharedCovarianceGaussian, False),
        (plr.LaplaceLogisticRegression, False),
    ],
    ids=["gaussian_nb", "bernoulli_nb", "lda", "laplace"],
)
def test_sample_posterior_draws_from_the_weighted_fit(make, bernoulli):
    """sample_posterior uses the fitted (weighted) state: integer weights == repeated rows."""
    X, y = binary_data(n=30, seed=5)
    if bernoulli:
        X = binary_features(y)
    w = np.random.default_rng(2).integers(1, 4, size=len(y))
    weighted = make().fit(X, y, sample_weight=w.astype(float))
    repeated = make().fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    unweighted = make().fit(X, y)
    tree_w = weighted.sample_posterior(draws=200, chains=2, random_state=11)
    tree_r = repeated.sample_posterior(draws=200, chains=2, random_state=11)
    tree_u = unweighted.sample_posterior(draws=200, chains=2, random_state=11)
    for name in tree_w.posterior.data_vars:
        values_w = tree_w.posterior[name].values
        np.testing.assert_allclose(values_w, tree_r.posterior[name].values, rtol=1e-6, atol=1e-8)
        assert not np.allclose(values_w, tree_u.posterior[name].values, rtol=1e-3)


# -- 5. weighted generative LOO --------------------------------------------------------
GENERATIVE_CASES = {
    "gaussian_nb": (plr.NaiveBayes, gaussian_nb_loo_reference, False, 2),
    "bernoulli_nb": (
        lambda: plr.NaiveBayes(likelihood="bernoulli"),
        bernoulli_nb_loo_reference,
        True,
        2,
    ),
    "lda": (plr.SharedCovarianceGaussian, lda_loo_reference, False, 2),
    "lda_three_class": (plr.SharedCovarianceGaussian, lda_loo_reference, False, 3),
}


def generative_case(name):
    make, reference, bernoulli, n_classes = GENERATIVE_CASES[name]
    X, y = three_class_data(n=45, seed=3) if n_classes == 3 else binary_data(n=30, seed=3)
    if bernoulli:
        X = binary_features(y)
    return make, reference, X, y, n_classes


@pytest.mark.parametrize("case", list(GENERATIVE_CASES))
def test_weighted_generative_loo_matches_closed_form_brute_force(case):
    """Weighted exact LOO: elpd_i = w_i log p(y_i | x_i, D with w_i = 0), from scratch.

    Why not refit with weight 0: the default priors of Gaussian NB and LDA are
    centred and scaled by the weighted grand mean and variance of the data, and
    LOO keeps these hyperparameters at their full-data values (the package's
    documented semantics: only the likelihood of row i is removed). A refit would
    re-derive them from the remaining rows and change the prior, so the reference
    here is the conjugate posterior predictive written out from the textbook
    formulas (scipy Student-t / multivariate t / Bernoulli), with row i's weight
    set to 0 and the prior fixed. Row duplication is no reference either: it
    removes one copy at a time, whereas LOO removes the row with its whole weight.
    (test_bernoulli_weighted_loo_matches_zero_weight_refits, below, is the refit
    check for the model whose prior is not data-scaled.)
    """
    make, reference, X, y, n_classes = generative_case(case)
    w = float_weights(len(y))
    model = make().fit(X, y, sample_weight=w)
    loo = model.loo(X, y, sample_weight=w)
    expected = reference(X, y, w, n_classes)
    np.testing.assert_allclose(loo.elpd_i.values, expected, rtol=1e-9, atol=1e-12)
    assert loo.elpd == pytest.approx(expected.sum(), rel=1e-10)
    assert loo.method == "exact LOO"
    np.testing.assert_array_equal(loo.pareto_k.values, 0.0)
    # The old bug: a weighted fit gave exactly the LOO of the unweighted model.
    unweighted = make().fit(X, y).loo(X, y)
    assert abs(loo.elpd - unweighted.elpd) > 1.0


def test_bernoulli_weighted_loo_matches_zero_weight_refits():
    """Beta-Bernoulli NB (no data-scaled prior): LOO == refits with row i's weight set to 0."""
    X, y = binary_data(n=30, seed=3)
    X = binary_features(y)
    w = float_weights(len(y))
    loo = plr.NaiveBayes(likelihood="bernoulli").fit(X, y, sample_weight=w).loo(X, y, w)
    expected = np.empty(len(y))
    for i in range(len(y)):
        s = w.copy()
        s[i] = 0.0
        refit = plr.NaiveBayes(likelihood="bernoulli").fit(X, y, sample_weight=s)
        log_joint = refit.posterior_.log_predictive(X[i : i + 1])[0]
        expected[i] = w[i] * log_conditional(log_joint, y[i])
    np.testing.assert_allclose(loo.elpd_i.values, expected, rtol=1e-10)


@pytest.mark.parametrize("case", list(GENERATIVE_CASES))
def test_unit_weights_give_the_unweighted_generative_loo(case):
    """Weights of 1.0 passed explicitly (fit and loo) give exactly the unweighted LOO."""
    make, _, X, y, _ = generative_case(case)
    ones = np.ones(len(y))
    explicit = make().fit(X, y, sample_weight=ones).loo(X, y, sample_weight=ones)
    implicit = make().fit(X, y).loo(X, y)
    np.testing.assert_array_equal(explicit.elpd_i.values, implicit.elpd_i.values)
    assert explicit.elpd == implicit.elpd


# -- 6. weighted Laplace LOO -------------------------------------------------------------
def test_weighted_laplace_loo_matches_zero_weight_refits():
    """Weighted PSIS-LOO of Laplace tracks sum_i w_i log p(y_i | x_i, refit with w_i = 0)."""
    rng = np.random.default_rng(1)
    n = 40
    X = rng.normal(size=(n, 1))
    y = (1.2 * X[:, 0] + 0.3 + rng.logistic(size=n) > 0).astype(int)
    w = rng.integers(1, 4, size=n).astype(float)
    settings = {"prior_scale": 2.5, "intercept_prior_scale": 5.0, "autoscale": False}
    model = plr.LaplaceLogisticRegression(**settings).fit(X, y, sample_weight=w)
    loo = model.loo(X, y, sample_weight=w)
    brute = np.empty(n)
    for i in range(n):
        s = w.copy()
        s[i] = 0.0
        refit = plr.LaplaceLogisticRegression(**settings).fit(X, y, sample_weight=s)
        proba = refit.predict_proba(X[i : i + 1], method="mc", draws=20000)
        brute[i] = w[i] * np.log(proba[0, y[i]])
    assert abs(loo.elpd - brute.sum()) < 0.25 * loo.se
    assert abs(loo.elpd - brute.sum()) < 0.5  # nats; the weighting is worth ~30 here
    # Row by row, per unit of weight (PSIS targets the exact posterior, the refits are
    # Laplace Gaussians, so they differ a little for the most influential rows).
    assert np.all(np.abs(loo.elpd_i.values - brute) <= 0.06 * w)
    assert np.max(loo.pareto_k.values) < 0.7
    # The old bug: the weighted fit scored without its weights. Now refused.
    with pytest.raises(ValueError, match="fitted with other sample weights"):
        model.loo(X, y)


# -- 7. compare() ----------------------------------------------------------------------
def test_compare_is_deterministic_by_default(binary):
    """compare() with its default random_state gives the same table at every call."""
    X, y = binary
    models = {
        "laplace": plr.LaplaceLogisticRegression().fit(X, y),
        "map": plr.MAPLogisticRegression().fit(X, y),
        "nb": plr.NaiveBayes().fit(X, y),
    }
    first = plr.compare(models, X, y)
    second = plr.compare(models, X, y)
    np.testing.assert_array_equal(
        first.loc[sorted(models), "elpd_loo"].to_numpy(),
        second.loc[sorted(models), "elpd_loo"].to_numpy(),
    )
    assert first.loc["laplace", "elpd_loo"] == models["laplace"].loo(X, y, random_state=0).elpd


def test_compare_refuses_model_fitted_on_other_rows():
    """A model fitted on the first 20 rows is refused when compared on 40 rows."""
    X, y = binary_data(n=40, seed=2)
    models = {
        "nb_head": plr.NaiveBayes().fit(X[:20], y[:20]),
        "map": plr.MAPLogisticRegression().fit(X, y),
    }
    with pytest.raises(ValueError, match="not fitted on the data given"):
        plr.compare(models, X, y)


def test_compare_checks_sample_weight_and_uses_it(binary):
    """A weighted fit is refused without its weights, and scored with them when given."""
    X, y = binary
    w = float_weights(len(y))
    laplace = plr.LaplaceLogisticRegression().fit(X, y, sample_weight=w)
    models = {"laplace": laplace, "nb": plr.NaiveBayes().fit(X, y, sample_weight=w)}
    with pytest.raises(ValueError, match=r"not fitted on the data given.*sample weights"):
        plr.compare(models, X, y)
    table = plr.compare(models, X, y, sample_weight=w)
    expected = laplace.loo(X, y, sample_weight=w, random_state=0).elpd
    assert table.loc["laplace", "elpd_loo"] == pytest.approx(expected, rel=1e-12)
    assert table.loc["nb", "elpd_loo"] == pytest.approx(
        models["nb"].loo(X, y, sample_weight=w).elpd, rel=1e-12
    )


# -- 8. random_state policy --------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [plr.LaplaceLogisticRegression, plr.NaiveBayes, plr.SharedCovarianceGaussian],
    ids=["laplace", "naive_bayes", "lda"],
)
def test_sample_posterior_random_state_policy(binary, make):
    """sample_posterior takes None, an int or a Generator (an int n == default_rng(n))."""
    X, y = binary
    model = make().fit(X, y)

    def draws(random_state):
        tree = model.sample_posterior(draws=20, chains=2, random_state=random_state)
        return np.concatenate([tree.posterior[v].values.ravel() for v in tree.posterior])

    assert np.all(np.isfinite(draws(None)))
    from_int = draws(4)
    np.testing.assert_array_equal(from_int, draws(4))
    np.testing.assert_array_equal(from_int, draws(np.random.default_rng(4)))
    shared = np.random.default_rng(4)
    np.testing.assert_array_equal(draws(shared), from_int)
    assert not np.array_equal(draws(shared), from_int)  # a Generator is used, and advanced
    with pytest.raises(ValueError, match="random_state must be"):
        draws("four")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:NUTS may not have converged")
def test_nuts_accepts_a_generator_random_state(binary):
    """Bug: PyMCLogisticRegression rejected a Generator; equal seeds must give equal draws."""
    X, y = binary
    fitted = plr.PyMCLogisticRegression(random_state=np.random.default_rng(0), **NUTS_SETTINGS)
    fitted.fit(X, y)
    assert fitted.idata_.posterior["coef"].shape == (2, 100, 2)
    first = plr.PyMCLogisticRegression(random_state=np.random.default_rng(5), **NUTS_SETTINGS)
    second = plr.PyMCLogisticRegression(random_state=np.random.default_rng(5), **NUTS_SETTINGS)
    from_int = plr.PyMCLogisticRegression(random_state=5, **NUTS_SETTINGS)
    coef = [m.fit(X, y).idata_.posterior["coef"].values for m in (first, second, from_int)]
    np.testing.assert_array_equal(coef[0], coef[1])
    np.testing.assert_array_equal(coef[0], coef[2])
    assert not np.array_equal(coef[0], fitted.idata_.posterior["coef"].values)
    # The NUTS draws follow the protocol too: a Generator is accepted, data by keyword.
    tree = first.sample_posterior(random_state=np.random.default_rng(0))
    np.testing.assert_array_equal(tree.posterior["coef"].values, coef[0])
    with pytest.raises(ValueError, match=r"by keyword: X=\.\.\., y=\.\.\."):
        first.sample_posterior(X, y)


# -- 9. agreement in standardised units -----------------------------------------------------
def shifted_tree(tree, feature, c):
    """A copy of ``tree`` with every draw of coef[feature] shifted by c sds of that coef."""
    shifted = tree.copy(deep=True)
    coef = shifted.posterior["coef"].values
    sd = coef[..., feature].std(ddof=1)
    coef[..., feature] += c * sd
    return shifted, sd


def gaussian_kl_reference(draws_a, draws_b):
    """KL(N(mean_a, cov_a) || N(mean_b, cov_b)) of the Gaussian fits of two draw sets."""
    mean_a, mean_b = draws_a.mean(axis=0), draws_b.mean(axis=0)
    cov_a, cov_b = np.cov(draws_a, rowvar=False), np.cov(draws_b, rowvar=False)
    inv_b = np.linalg.inv(cov_b)
    diff = mean_b - mean_a
    return 0.5 * (
        np.trace(inv_b @ cov_a)
        + diff @ inv_b @ diff
        - len(mean_a)
        + np.log(np.linalg.det(cov_b) / np.linalg.det(cov_a))
    )


def joint_draws(tree):
    post = tree.posterior
    intercept = post["intercept"].values.reshape(-1, 1)
    return np.hstack([intercept, post["coef"].values.reshape(len(intercept), -1)])


@pytest.fixture(scope="module")
def laplace_tree(binary):
    X, y = binary
    model = plr.LaplaceLogisticRegression().fit(X, y)
    return model.sample_posterior(draws=2000, chains=1, random_state=0)


def test_agreement_measures_a_pure_shift_in_reference_sds(laplace_tree):
    """A shift of c sds reads as mean_diff_sd = wasserstein_sd = c; KL matches numpy."""
    c = 1.5
    shifted, sd = shifted_tree(laplace_tree, feature=0, c=c)
    result = plr.agreement(shifted, laplace_tree)
    table = result.table
    assert table.loc["coef[x0]", "mean_diff_sd"] == pytest.approx(c, rel=1e-9)
    assert table.loc["coef[x0]", "wasserstein_sd"] == pytest.approx(c, rel=1e-9)
    assert table.loc["coef[x0]", "sd_ratio"] == pytest.approx(1.0, rel=1e-9)
    for name in ("intercept", "coef[x1]"):
        assert table.loc[name, "mean_diff_sd"] == 0.0
        assert table.loc[name, "wasserstein_sd"] == 0.0
    assert result.wasserstein == pytest.approx(c, rel=1e-9)
    assert result.joint_wasserstein is None
    assert not result.good_enough
    expected_kl = gaussian_kl_reference(joint_draws(shifted), joint_draws(laplace_tree))
    assert result.kl_divergence == pytest.approx(expected_kl, rel=1e-8)
    # A pure shift v keeps the covariance, so the KL is also 0.5 v' inv(cov) v.
    shift = np.zeros(3)
    shift[1] = c * sd
    inverse = np.linalg.inv(np.cov(joint_draws(laplace_tree), rowvar=False))
    assert result.kl_divergence == pytest.approx(0.5 * shift @ inverse @ shift, rel=1e-8)
    assert plr.agreement(laplace_tree, laplace_tree).kl_divergence == pytest.approx(0, abs=1e-10)


@pytest.mark.slow
def test_agreement_joint_wasserstein_of_a_pure_shift(laplace_tree):
    """joint_wasserstein=True: the raw-unit W1 of a sample shifted by v is |v| (~20 s LP)."""
    shifted, sd = shifted_tree(laplace_tree, feature=0, c=1.5)
    result = plr.agreement(shifted, laplace_tree, joint_wasserstein=True)
    assert np.isfinite(result.joint_wasserstein)
    assert result.joint_wasserstein == pytest.approx(1.5 * sd, rel=1e-6)


def test_agreement_joint_wasserstein_with_fewer_than_500_draws(binary):
    """joint_wasserstein=True works for posteriors with fewer than 500 draws (it crashed)."""
    X, y = binary
    tree = plr.LaplaceLogisticRegression().fit(X, y).sample_posterior(200, 1, random_state=0)
    shifted, sd = shifted_tree(tree, feature=0, c=1.5)
    result = plr.agreement(shifted, tree, joint_wasserstein=True)
    assert result.joint_wasserstein == pytest.approx(1.5 * sd, rel=1e-6)


def test_agreement_is_invariant_to_the_softmax_row_convention():
    """Multiclass agreement does not depend on the non-identified common shift of class rows."""
    X, y = three_class_data()
    tree = plr.SharedCovarianceGaussian().fit(X, y).sample_posterior(2000, 1, random_state=0)
    anchored = tree.copy(deep=True)
    coef, intercept = anchored.posterior["coef"].values, anchored.posterior["intercept"].values
    # Subtract class 0's row from every row, draw by draw: the same p(y | x) in every draw.
    coef -= coef[:, :, :1, :].copy()
    intercept -= intercept[:, :, :1].copy()
    for a, b in ((anchored, tree), (tree, anchored)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            result = plr.agreement(a, b)
        assert np.isfinite(result.kl_divergence)
        assert result.kl_divergence == pytest.approx(0.0, abs=1e-8)
        np.testing.assert_allclose(result.table["mean_diff_sd"], 0.0, atol=1e-8)
        assert result.good_enough


# -- 10. Newton's L-BFGS rescue ---------------------------------------------------------
class _Weights:
    """The likelihood attributes the solver reads: the tolerance unit and the binary path."""

    def __init__(self, n):
        self.sample_weight = np.ones(n)
        self.total_weight = float(n)
        self.n_samples = n
        self.n_rows = 1


class BlockedLineSearchQuadratic:
    """f(x) = 0.5 x'Ax - b'x with value() = +inf away from the start: every Newton
    line-search trial fails. value_gradient() is honest; its value is computed as
    0.5 (x - x*)'A(x - x*) (the same quadratic up to a constant) so that rounding in
    f does not stop L-BFGS short of tol=1e-10."""

    def __init__(self, A, b, start, honest_gradient=True):
        self.A, self.b, self.start = A, b, np.array(start, dtype=float)
        self.honest_gradient = honest_gradient
        self.optimum = np.linalg.solve(A, b)
        self.n_params = len(b)
        self.likelihood = _Weights(5)
        self.value_calls = 0

    def _f(self, x):
        r = x - self.optimum
        return 0.5 * r @ self.A @ r

    def value(self, x):
        self.value_calls += 1
        return self._f(x) if np.array_equal(x, self.start) else np.inf

    def value_gradient(self, x):
        if self.honest_gradient or np.array_equal(x, self.start):
            return self._f(x), self.A @ x - self.b
        return np.inf, self.A @ x - self.b

    def hessian(self, x, rows=None):
        return self.A.copy()


@pytest.fixture
def quadratic():
    rng = np.random.default_rng(0)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    A = rotation @ np.diag([1.0, 10.0, 100.0]) @ rotation.T
    return BlockedLineSearchQuadratic(A, np.array([1.0, -2.0, 0.5]), np.zeros(3))


def test_newton_line_search_failure_is_rescued_by_lbfgs(quadratic):
    """When no Newton step decreases f, L-BFGS continues and the exact Hessian is formed."""
    result = minimize(quadratic, quadratic.start, solver="newton", tol=1e-10, max_iter=50)
    assert quadratic.value_calls > 0  # the line search was tried (and failed)
    assert result.converged
    assert result.stop_reason == "converged"
    np.testing.assert_allclose(result.params, np.linalg.solve(quadratic.A, quadratic.b), atol=1e-9)
    np.testing.assert_array_equal(result.hessian, quadratic.A)
    np.testing.assert_allclose(result.cholesky @ result.cholesky.T, quadratic.A, rtol=1e-12)


def test_newton_unrescued_line_search_failure_warns_with_its_cause(quadratic):
    """When L-BFGS cannot move either, stop_reason is 'line_search' and the warning names it."""
    quadratic.honest_gradient = False
    result = minimize(quadratic, quadratic.start, solver="newton", tol=1e-10, max_iter=50)
    np.testing.assert_array_equal(result.params, quadratic.start)
    assert not result.converged
    assert result.stop_reason == "line_search"
    with pytest.warns(ConvergenceWarning, match="no step along the Newton direction"):
        warn_not_converged(result, 1e-10)


# -- 11. the public MAPResult ------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "kwargs"),
    [
        ("binary", {}),
        ("three", {}),
        ("three", {"intercept_prior_scale": None}),
        ("three", {"prior_scale": None, "intercept_prior_scale": None}),
    ],
    ids=["binary", "symmetric", "symmetric_flat_intercept", "reference_mle"],
)
def test_map_result_is_consistent_with_the_estimator(data, kwargs):
    """result_.layout gives (intercept_, coef_); result_.log_likelihood is the numpy one."""
    X, y = binary_data() if data == "binary" else three_class_data()
    w = float_weights(len(y))
    model = plr.MAPLogisticRegression(**kwargs).fit(X, y, sample_weight=w)
    result = model.result_
    assert isinstance(result, plr.MAPResult)
    intercept, coef = result.layout.estimator_rows(result.theta)
    np.testing.assert_array_equal(intercept, model.intercept_)
    np.testing.assert_array_equal(coef, model.coef_)
    logits = X @ model.coef_.T + model.intercept_
    if data == "binary":
        logits = np.column_stack([np.zeros(len(y)), logits[:, 0]])
    log_p = special.log_softmax(logits, axis=1)[np.arange(len(y)), y]
    assert result.log_likelihood == pytest.approx(w @ log_p, rel=1e-12)


def test_symmetric_model_with_flat_intercepts_sums_intercepts_to_zero():
    """Symmetric multiclass with intercept_prior_scale=None: sum-to-zero layout and intercepts."""
    X, y = three_class_data()
    model = plr.MAPLogisticRegression(intercept_prior_scale=None).fit(X, y)
    layout = model.result_.layout
    assert model.multiclass_ == "symmetric"
    assert layout.sum_to_zero
    assert layout.n_free == 2 + 3 * X.shape[1]
    assert model.intercept_.shape == (3,)
    assert abs(model.intercept_.sum()) < 1e-12


def test_gaussian_marginal_summary_against_scipy():
    """Normal and log-normal moments and intervals, against scipy.stats' distributions."""
    mean, sd = np.array([-0.3, 0.0, 1.2]), np.array([0.2, 1.0, 0.05])
    for exponentiate, dist in (
        (False, stats.norm(loc=mean, scale=sd)),
        (True, stats.lognorm(s=sd, scale=np.exp(mean))),
    ):
        summary = gaussian_marginal_summary(mean, sd, 0.9, exponentiate)
        expected = (dist.mean(), dist.std(), dist.ppf(0.05), dist.ppf(0.95))
        for got, want in zip(summary, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_weighted_draw_summary_against_repeated_draws():
    """Integer weights are the same as repeating each draw that many times."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(7, 2))
    counts = np.array([1, 3, 2, 5, 1, 4, 2])
    log_weights = np.log(counts / counts.sum())
    mean, sd, lower, upper = weighted_draw_summary(values, log_weights, 0.5)
    repeated = np.repeat(values, counts, axis=0)
    np.testing.assert_allclose(mean, repeated.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sd, repeated.std(axis=0), rtol=1e-12)
    expected = np.quantile(repeated, [0.25, 0.75], axis=0, method="inverted_cdf")
    np.testing.assert_allclose([lower, upper], expected)
