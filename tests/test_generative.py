"""Generative comparators: LDA and Naive Bayes, maximum likelihood and conjugate Bayes.

References are independent of the code under test: scikit-learn's estimators,
scipy's densities, textbook conjugate updates written out here in another
algebraic form, brute-force refits, and exact hand calculations.
"""

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.covariance import ledoit_wolf
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import cross_val_score
from sklearn.naive_bayes import BernoulliNB, GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from problogreg import MAPLogisticRegression, SeparationError
from problogreg.models.generative import NaiveBayes, SharedCovarianceGaussian
from problogreg.models.generative.shared_covariance import RankDeficientCovarianceWarning

# The lectures' example: one (1,1) in class 1; 4x(1,0), 4x(0,1), 4x(0,0) in class 2.
LECTURE_X = np.array([[1, 1]] + [[1, 0]] * 4 + [[0, 1]] * 4 + [[0, 0]] * 4, dtype=float)
LECTURE_Y = np.array(["C1"] + ["C2"] * 12)


def gaussian_classes(n_per_class, n_classes, n_features, seed):
    """Correlated Gaussian classes with a shared covariance and shifted means."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(n_features, n_features)) / np.sqrt(n_features) + np.eye(n_features)
    X, y = [], []
    for k, n in enumerate(np.broadcast_to(n_per_class, n_classes)):
        shift = rng.normal(scale=1.5, size=n_features)
        X.append(rng.normal(size=(n, n_features)) @ mixing + shift)
        y += [k] * n
    return np.vstack(X), np.array(y)


def binary_features(n, n_classes, n_features, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    prob = rng.uniform(0.1, 0.9, size=(n_classes, n_features))
    return (rng.uniform(size=(n, n_features)) < prob[y]).astype(float), y


def log_softmax(logits):
    return logits - logsumexp(logits, axis=-1, keepdims=True)


# -- SharedCovarianceGaussian: maximum likelihood -----------------------------------
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("shrinkage", [None, 0.3])
def test_lda_matches_sklearn_lsqr(n_classes, shrinkage):
    X, y = gaussian_classes([40, 25, 30][:n_classes], n_classes, 4, seed=n_classes)
    ours = SharedCovarianceGaussian(shrinkage=shrinkage).fit(X, y)
    ref = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage).fit(X, y)
    # sklearn shrinks each biased class covariance and pools with the priors; for a
    # fixed intensity that is the same as shrinking the pooled covariance.
    np.testing.assert_allclose(ours.covariance_, ref.covariance_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-12)
    X_new = np.random.default_rng(9).normal(scale=2, size=(50, 4))
    np.testing.assert_allclose(ours.predict_proba(X_new), ref.predict_proba(X_new), atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X_new), ref.predict(X_new))


@pytest.mark.filterwarnings("ignore:Only one sample available:UserWarning")
def test_lda_class_with_one_sample_matches_sklearn():
    X, y = gaussian_classes([30, 1, 20], 3, 2, seed=4)
    ours = SharedCovarianceGaussian().fit(X, y)
    ref = LinearDiscriminantAnalysis(solver="lsqr").fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)


def test_lda_ledoit_wolf_is_that_of_the_standardised_pooled_residuals():
    X, y = gaussian_classes([15, 12], 2, 6, seed=5)
    X = X * np.array([1e-3, 1.0, 10.0, 1e3, 1.0, 0.1])  # features in very different units
    model = SharedCovarianceGaussian(shrinkage="auto").fit(X, y)
    residuals = X - model.means_[y]
    sd = residuals.std(axis=0)
    correlation, intensity = ledoit_wolf(residuals / sd, assume_centered=True)
    assert 0 < model.shrinkage_ < 1
    assert model.shrinkage_ == pytest.approx(intensity, rel=1e-10)
    np.testing.assert_allclose(model.covariance_, sd[:, None] * correlation * sd, rtol=1e-10)


def test_lda_auto_shrinkage_does_not_depend_on_feature_units():
    X, y = gaussian_classes([15, 12], 2, 6, seed=5)
    units = np.array([1e-3, 1.0, 10.0, 1e3, 1.0, 0.1])
    plain = SharedCovarianceGaussian(shrinkage="auto").fit(X, y)
    rescaled = SharedCovarianceGaussian(shrinkage="auto").fit(X * units, y)
    assert rescaled.shrinkage_ == pytest.approx(plain.shrinkage_, rel=1e-10)
    np.testing.assert_allclose(
        rescaled.predict_proba(X * units), plain.predict_proba(X), atol=1e-10
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_lda_implied_logistic_form_is_the_bayes_rule(n_classes):
    X, y = gaussian_classes(20, n_classes, 3, seed=6)
    class_prior = [0.2, 0.8] if n_classes == 2 else [0.5, 0.2, 0.3]
    model = SharedCovarianceGaussian(class_prior=class_prior).fit(X, y)
    X_new = np.random.default_rng(1).normal(scale=3, size=(40, 3))
    joint = np.column_stack(
        [
            np.log(class_prior[k])
            + stats.multivariate_normal(model.means_[k], model.covariance_).logpdf(X_new)
            for k in range(n_classes)
        ]
    )
    bayes_rule = np.exp(log_softmax(joint))
    eta = X_new @ model.coef_.T + model.intercept_
    if n_classes == 2:
        assert model.coef_.shape == (1, 3) and model.intercept_.shape == (1,)
        implied = np.column_stack([1 - 1 / (1 + np.exp(-eta[:, 0])), 1 / (1 + np.exp(-eta[:, 0]))])
        precision = np.linalg.inv(model.covariance_)
        mu0, mu1 = model.means_
        w = precision @ (mu1 - mu0)
        b = -0.5 * mu1 @ precision @ mu1 + 0.5 * mu0 @ precision @ mu0 + np.log(0.8 / 0.2)
        np.testing.assert_allclose(model.coef_[0], w, rtol=1e-10)
        np.testing.assert_allclose(model.intercept_[0], b, rtol=1e-10)
    else:
        assert model.coef_.shape == (3, 3) and model.intercept_.shape == (3,)
        implied = np.exp(log_softmax(eta))
    np.testing.assert_allclose(implied, bayes_rule, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X_new), bayes_rule, atol=1e-12)


@pytest.mark.parametrize(
    ("X", "y", "reason"),
    [
        (np.column_stack([np.arange(8.0), np.ones(8)]), np.arange(8) % 2, "do not vary"),
        (np.random.default_rng(0).normal(size=(5, 8)), np.arange(5) % 2, "rank at most 3"),
        (
            np.column_stack([np.arange(8.0), 2 * np.arange(8.0)]),
            np.arange(8) % 2,
            "linearly dependent",
        ),
    ],
    ids=["constant", "wide", "collinear"],
)
def test_lda_singular_covariance_warns_and_names_shrinkage(X, y, reason):
    with pytest.warns(RankDeficientCovarianceWarning, match=rf"singular.*{reason}.*shrinkage"):
        model = SharedCovarianceGaussian().fit(X, y)
    assert np.all(np.isfinite(model.predict_proba(X)))
    fixed = SharedCovarianceGaussian(shrinkage=0.5).fit(X, y)
    assert np.all(np.isfinite(fixed.predict_proba(X)))


@pytest.mark.parametrize(("n", "d"), [(12, 30), (40, 5)], ids=["wide", "collinear"])
def test_lda_singular_covariance_is_scikit_learns_svd_solution(n, d):
    """A rank-deficient pooled covariance: the discriminant of scikit-learn's svd solver
    (pseudo-inverse in the span of the within-class data)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, d))
    if d < n:
        X = np.column_stack([X, X[:, 0] - 2 * X[:, 1], np.full(n, 3.0)])  # collinear, constant
    y = np.arange(n) % 2
    X[y == 1] += 0.7
    with pytest.warns(RankDeficientCovarianceWarning):
        ours = SharedCovarianceGaussian().fit(X, y)
    reference = LinearDiscriminantAnalysis(solver="svd").fit(X, y)
    X_new = rng.normal(size=(20, X.shape[1]))
    np.testing.assert_allclose(
        ours.decision_function(X_new),
        reference.decision_function(X_new),
        rtol=1e-8,
        atol=1e-9,
    )


@pytest.mark.parametrize("shrinkage", [None, "auto"])
def test_lda_accepts_features_whose_spreads_differ_by_1e8(shrinkage):
    # Issue 16, item 3: singularity used to be judged on the covariance itself, whose
    # eigenvalues then span 1e16, so valid data was called "nearly linearly dependent".
    units = np.array([1e4, 1e-4, 1.0])
    X, y = gaussian_classes([40, 25, 30], 3, 3, seed=11)
    plain = SharedCovarianceGaussian(shrinkage=shrinkage).fit(X, y)
    scaled = SharedCovarianceGaussian(shrinkage=shrinkage).fit(X * units, y)
    X_new = np.random.default_rng(9).normal(scale=2, size=(50, 3))
    np.testing.assert_allclose(
        scaled.predict_proba(X_new * units), plain.predict_proba(X_new), atol=1e-10
    )
    # The same model fitted by scikit-learn on standardised features (LDA is equivariant).
    ref = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(solver="lsqr"))
    if shrinkage is None:
        ref.fit(X * units, y)
        np.testing.assert_allclose(
            scaled.predict_proba(X_new * units), ref.predict_proba(X_new * units), atol=1e-10
        )


def test_lda_with_spreads_1e8_apart_matches_sklearn_lsqr_on_breast_cancer():
    # scikit-learn's lsqr solves with the raw covariance; on these data it is still
    # accurate, so its predictions are a reference for the unit-free factorisation.
    from problogreg import datasets

    X, y = datasets.load("breast_cancer")
    X = X.iloc[:, :3].to_numpy() * [1e4, 1e-4, 1.0]
    ours = SharedCovarianceGaussian().fit(X, y)
    ref = LinearDiscriminantAnalysis(solver="lsqr").fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-8)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


# -- NaiveBayes: maximum likelihood ---------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3])
def test_gaussian_nb_matches_sklearn(n_classes):
    X, y = gaussian_classes([20, 1, 15][:n_classes], n_classes, 4, seed=7)
    ours = NaiveBayes().fit(X, y)
    ref = GaussianNB().fit(X, y)
    np.testing.assert_allclose(ours.variances_, ref.var_, rtol=1e-12)
    X_new = np.random.default_rng(2).normal(scale=2, size=(40, 4))
    np.testing.assert_allclose(ours.predict_proba(X_new), ref.predict_proba(X_new), atol=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_bernoulli_nb_matches_sklearn(alpha, n_classes):
    X, y = binary_features(60, n_classes, 5, seed=8)
    ours = NaiveBayes("bernoulli", alpha=alpha).fit(X, y)
    ref = BernoulliNB(alpha=alpha).fit(X, y)
    np.testing.assert_allclose(np.log(ours.feature_prob_), ref.feature_log_prob_, rtol=1e-12)
    grid = np.array(np.meshgrid(*[[0.0, 1.0]] * 5)).reshape(5, -1).T
    np.testing.assert_allclose(ours.predict_proba(grid), ref.predict_proba(grid), atol=1e-12)


def test_gaussian_nb_is_stable_far_from_the_data():
    X, y = gaussian_classes(20, 3, 2, seed=10)
    proba = NaiveBayes().fit(X, y).predict_proba([[1e6, -1e6], [1e3, 0.0]])
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_gaussian_nb_impossible_sample_message_fits_the_gaussian_model():
    # Issue 16, item 2: the message used to blame alpha, which a Gaussian model ignores.
    X, y = gaussian_classes(20, 2, 2, seed=10)
    model = NaiveBayes(var_smoothing=0).fit(X * 1e-150, y)
    with pytest.raises(ValueError, match="every class density underflows") as error:
        model.predict_proba([[0.0, 0.0], [1e100, 0.0]])
    assert "Samples [1]" in str(error.value) and "alpha" not in str(error.value)
    assert "rescale the features" in str(error.value)


@pytest.mark.parametrize("make", [SharedCovarianceGaussian, NaiveBayes])
@pytest.mark.parametrize(
    ("value", "found"),
    [(np.nan, "NaN"), (-np.inf, "infinite"), (1e160, "larger than 1e\\+150 in magnitude")],
)
def test_predict_names_the_columns_of_unusable_values(make, value, found):
    # Issue 16, item 2: a finite |x| > 1e150 squared overflows, which used to give a
    # RuntimeWarning (an error under this suite's filters) and NaN or 0/1 probabilities.
    X, y = gaussian_classes(20, 3, 2, seed=10)
    frame = pd.DataFrame(X, columns=["height", "weight"])
    model = make().fit(frame, y)
    bad = frame.iloc[:4].copy()
    bad.iloc[2, 1] = value
    for method in (model.predict_proba, model.predict, model.predict_log_proba):
        with pytest.raises(ValueError, match=rf"{found} in columns \['weight'\] \(rows 2;"):
            method(bad)


def test_predict_accepts_values_up_to_1e150_without_warnings():
    X, y = gaussian_classes(20, 3, 2, seed=10)
    for model in (SharedCovarianceGaussian().fit(X, y), NaiveBayes().fit(X, y)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            proba = model.predict_proba([[1e150, -1e150], [-1e149, 0.0]])
        assert np.all(np.isfinite(proba))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_lecture_example_naive_bayes_three_sevenths():
    # P(C1)=1/13, p((1,1)|C1)=1; P(C2)=12/13, p((1,1)|C2)=(1/3)^2 -> (1/13)/(1/13+4/39) = 3/7.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = NaiveBayes("bernoulli", alpha=0).fit(LECTURE_X, LECTURE_Y)
        proba = model.predict_proba(LECTURE_X)
    assert proba[0, 0] == pytest.approx(3 / 7, abs=1e-14)
    assert model.predict([[1, 1]])[0] == "C2"
    # p = 0 and p = 1 occur (class C1 has x = (1, 1) only); no NaN anywhere.
    assert set(model.feature_prob_[0]) == {1.0}
    np.testing.assert_array_equal(proba[1:, 0], 0.0)


def test_lecture_example_logistic_regression_says_class_one():
    # x1 + x2 > 1.5 separates C1 from C2, so the MLE is infinite ...
    with pytest.raises(SeparationError):
        MAPLogisticRegression(prior_scale=None, intercept_prior_scale=None).fit(
            LECTURE_X, LECTURE_Y
        )
    # ... and a wide prior gives a finite fit that puts (1, 1) in C1.
    wide = MAPLogisticRegression(prior_scale=10.0, intercept_prior_scale=None, autoscale=False)
    assert wide.fit(LECTURE_X, LECTURE_Y).predict_proba([[1.0, 1.0]])[0, 0] > 0.5


def test_bernoulli_alpha_zero_impossible_sample_is_an_error():
    X = np.array([[1, 0], [1, 0], [0, 0], [0, 0]], dtype=float)
    model = NaiveBayes("bernoulli", alpha=0).fit(X, [0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"probability zero under every class.*alpha > 0"):
        model.predict_proba([[0.0, 1.0]])


# -- sample weights and bad input ------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: SharedCovarianceGaussian(),
        lambda: SharedCovarianceGaussian(shrinkage="auto"),
        lambda: NaiveBayes(),
        lambda: NaiveBayes("bernoulli", alpha=0.5),
    ],
    ids=["lda", "lda-auto", "gaussian-nb", "bernoulli-nb"],
)
def test_integer_sample_weight_is_repetition(make):
    X, y = gaussian_classes([12, 9, 10], 3, 3, seed=11)
    if make().get_params().get("likelihood") == "bernoulli":
        X = (X.mean(axis=0) < X).astype(float)
    weight = np.random.default_rng(3).integers(0, 4, len(y))
    weighted = make().fit(X, y, sample_weight=weight)
    repeated = make().fit(np.repeat(X, weight, axis=0), np.repeat(y, weight))
    for name in ("class_prior_", "means_", "covariance_", "variances_", "feature_prob_"):
        if hasattr(repeated, name):
            np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-10)


@pytest.mark.parametrize("make", [SharedCovarianceGaussian, NaiveBayes])
def test_nan_is_a_clear_error(make):
    X, y = gaussian_classes(10, 2, 2, seed=12)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make().fit(X, y)


def test_gaussian_nb_zero_variance_errors():
    X, y = gaussian_classes([10, 1], 2, 2, seed=13)
    with pytest.raises(ValueError, match=r"classes \[1\].*one sample.*var_smoothing"):
        NaiveBayes(var_smoothing=0).fit(X, y)
    with pytest.raises(ValueError, match="positive variance"):
        NaiveBayes().fit(np.ones((6, 2)), [0, 1, 0, 1, 0, 1])


def test_bad_options_are_clear_errors():
    X, y = gaussian_classes(10, 2, 2, seed=14)
    with pytest.raises(ValueError, match="binary features"):
        NaiveBayes("bernoulli").fit(X, y)
    with pytest.raises(ValueError, match="class_prior has shape"):
        SharedCovarianceGaussian(class_prior=[0.2, 0.3, 0.5]).fit(X, y)
    with pytest.raises(ValueError, match="sum to 1"):
        NaiveBayes(class_prior=[0.2, 0.3]).fit(X, y)
    with pytest.raises(ValueError, match="covariance_prior_dof must exceed"):
        SharedCovarianceGaussian(covariance_prior_dof=2.5).fit(X, y).loo(X, y)
    with pytest.raises(ValueError, match=r"Features \['b'\] are constant"):
        frame = pd.DataFrame({"a": X[:, 0], "b": 1.0})
        NaiveBayes().fit(frame, y).sample_posterior(draws=10, chains=1)


# -- scikit-learn conventions -------------------------------------------------------
# Some checks fit on data whose pooled within-class covariance is singular (a feature
# constant within each class; 30 features for 27 samples): the pseudo-inverse handles them.
@pytest.mark.parametrize(
    ("estimator", "expected_failures"),
    [
        (NaiveBayes(), {}),
        (SharedCovarianceGaussian(shrinkage=0.1), {}),
        (SharedCovarianceGaussian(), {}),
    ],
    ids=["naive-bayes", "lda-shrinkage", "lda-default"],
)
def test_check_estimator(estimator, expected_failures):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(estimator, expected_failed_checks=expected_failures)


def test_pipeline_and_cross_validation():
    X, y = gaussian_classes(30, 3, 3, seed=15)
    for model in (SharedCovarianceGaussian(shrinkage="auto"), NaiveBayes()):
        scores = cross_val_score(make_pipeline(StandardScaler(), model), X, y, cv=3)
        assert scores.mean() > 0.6


# -- conjugate posteriors -------------------------------------------------------------
def niw_posterior_textbook(X, y, n_classes, kappa0, nu0):
    """NIW update in raw-moment form: Psi = Psi0 + sum x x' + K k0 m0 m0' - sum k_k m_k m_k'."""
    m0 = X.mean(axis=0)
    d = X.shape[1]
    psi = (nu0 - d - 1) * np.diag(X.var(axis=0)) + X.T @ X + n_classes * kappa0 * np.outer(m0, m0)
    kappa = np.array([kappa0 + np.sum(y == k) for k in range(n_classes)])
    means = np.array([(kappa0 * m0 + X[y == k].sum(axis=0)) / kappa[k] for k in range(n_classes)])
    psi -= np.einsum("k,ki,kj->ij", kappa, means, means)
    return means, kappa, psi, nu0 + len(y)


def nig_posterior_textbook(X, y, n_classes, kappa0, nu0):
    """NIG per class and feature in raw-moment form (the d = 1 case of the above)."""
    m0, s2 = X.mean(axis=0), X.var(axis=0)
    out = []
    for k in range(n_classes):
        Xk = X[y == k]
        kappa = kappa0 + len(Xk)
        mean = (kappa0 * m0 + Xk.sum(axis=0)) / kappa
        rate = (nu0 - 2) * s2 / 2 + 0.5 * ((Xk**2).sum(axis=0) + kappa0 * m0**2 - kappa * mean**2)
        out.append((mean, kappa, nu0 / 2 + len(Xk) / 2, rate))
    return out


def mc_mean_within(draws, expected, n_se=5.0):
    """Monte Carlo mean of independent draws agrees with ``expected`` within n_se errors."""
    flat = draws.reshape(-1, *draws.shape[2:])
    se = flat.std(axis=0) / np.sqrt(len(flat))
    np.testing.assert_array_less(np.abs(flat.mean(axis=0) - expected), n_se * se + 1e-12)


def test_lda_posterior_draws_match_the_closed_form():
    X, y = gaussian_classes([25, 18, 30], 3, 3, seed=16)
    model = SharedCovarianceGaussian(dirichlet_concentration=2.0)
    tree = model.fit(X, y).sample_posterior(draws=2000, chains=2, random_state=1, X=X, y=y)
    means, _, psi, nu = niw_posterior_textbook(X, y, 3, kappa0=0.01, nu0=5)
    post = tree.posterior
    mc_mean_within(post["mean"].values, means)
    mc_mean_within(post["covariance"].values, psi / (nu - 3 - 1))
    # E[Sigma^{-1}] = nu Psi^{-1}: checks the Wishart degrees of freedom too.
    mc_mean_within(np.linalg.inv(post["covariance"].values), nu * np.linalg.inv(psi))
    counts = np.bincount(y)
    mc_mean_within(post["class_prior"].values, (2.0 + counts) / (6.0 + len(y)))


def test_gaussian_nb_posterior_draws_match_the_closed_form():
    X, y = gaussian_classes([25, 18], 2, 3, seed=17)
    tree = (
        NaiveBayes(mean_prior_count=0.5)
        .fit(X, y)
        .sample_posterior(draws=2000, random_state=2, X=X, y=y)
    )
    for k, (mean, _, shape, rate) in enumerate(
        nig_posterior_textbook(X, y, 2, kappa0=0.5, nu0=3.0)
    ):
        mc_mean_within(tree.posterior["mean"].values[:, :, k], mean)
        mc_mean_within(tree.posterior["variance"].values[:, :, k], rate / (shape - 1))


def test_bernoulli_nb_posterior_draws_match_the_closed_form():
    X, y = binary_features(50, 2, 4, seed=18)
    tree = (
        NaiveBayes("bernoulli", beta_prior=0.5).fit(X, y).sample_posterior(random_state=3, X=X, y=y)
    )
    ones = np.array([X[y == k].sum(axis=0) for k in range(2)])
    counts = np.bincount(y)[:, None]
    mc_mean_within(tree.posterior["feature_prob"].values, (0.5 + ones) / (1.0 + counts))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_datatree_layout_and_conditional_log_likelihood(n_classes):
    X, y = gaussian_classes(12, n_classes, 2, seed=19)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    frame = pd.DataFrame(X, columns=["length", "width"])
    tree = (
        SharedCovarianceGaussian()
        .fit(frame, labels)
        .sample_posterior(draws=50, chains=3, X=frame, y=labels)
    )
    coef, intercept = tree.posterior["coef"], tree.posterior["intercept"]
    if n_classes == 2:
        assert coef.dims == ("chain", "draw", "feature") and intercept.dims == ("chain", "draw")
        eta = np.einsum("nd,cmd->cmn", X, coef.values) + intercept.values[..., None]
        logits = np.stack([np.zeros_like(eta), eta], axis=-1)
    else:
        assert coef.dims == ("chain", "draw", "class", "feature")
        assert list(tree.posterior["class"].values) == ["setosa", "versicolor", "virginica"]
        logits = np.einsum("nd,cmkd->cmnk", X, coef.values) + intercept.values[:, :, None, :]
    assert list(tree.posterior["feature"].values) == ["length", "width"]
    log_lik = tree.log_likelihood["y"]
    assert log_lik.dims == ("chain", "draw", "obs_id") and log_lik.shape == (3, 50, len(y))
    expected = np.take_along_axis(log_softmax(logits), y[None, None, :, None], axis=-1)[..., 0]
    np.testing.assert_allclose(log_lik.values, expected, atol=1e-10)
    np.testing.assert_array_equal(tree.observed_data["y"].values, labels)


def test_gaussian_nb_log_likelihood_is_the_conditional():
    X, y = gaussian_classes(10, 3, 2, seed=20)
    tree = NaiveBayes().fit(X, y).sample_posterior(draws=20, chains=2, random_state=4, X=X, y=y)
    post = tree.posterior
    assert "coef" not in post  # the Gaussian NB logit is quadratic in x
    joint = np.log(post["class_prior"].values)[:, :, None, :] + stats.norm.logpdf(
        X[None, None, :, None, :],
        post["mean"].values[:, :, None],
        np.sqrt(post["variance"].values[:, :, None]),
    ).sum(axis=-1)
    expected = np.take_along_axis(log_softmax(joint), y[None, None, :, None], axis=-1)[..., 0]
    np.testing.assert_allclose(tree.log_likelihood["y"].values, expected, atol=1e-10)


def test_sample_posterior_is_reproducible():
    X, y = binary_features(30, 2, 3, seed=21)
    model = NaiveBayes("bernoulli")
    a = model.fit(X, y).sample_posterior(draws=10, chains=2, random_state=5, X=X, y=y)
    b = model.fit(X, y).sample_posterior(draws=10, chains=2, random_state=5, X=X, y=y)
    np.testing.assert_array_equal(a.posterior["coef"].values, b.posterior["coef"].values)


# -- exact leave-one-out ------------------------------------------------------------
def brute_force_loo(X, y, class_conditional_log_predictive, prior_concentration=1.0):
    """log p(y_i | x_i, D_-i) by refitting the textbook posterior without sample i.

    The data-scaled hyperparameters stay at their full-data values (documented).
    """
    n_classes = len(np.unique(y))
    elpd = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        joint = [
            np.log(prior_concentration + np.sum(y[keep] == k))
            - np.log(n_classes * prior_concentration + len(y) - 1)
            + class_conditional_log_predictive(X[keep], y[keep], X[i], k)
            for k in range(n_classes)
        ]
        elpd.append(joint[y[i]] - logsumexp(joint))
    return np.array(elpd)


def test_lda_exact_loo_matches_brute_force_refits():
    X, y = gaussian_classes([14, 1, 10], 3, 3, seed=22)  # LOO empties class 1 once
    m0, s2, d = X.mean(axis=0), X.var(axis=0), 3
    kappa0, nu0 = 0.01, d + 2.0

    def student_t(X_train, y_train, x, k):
        Xk = X_train[y_train == k]
        kappa, nu = kappa0 + len(Xk), nu0 + len(y_train)
        mean = (kappa0 * m0 + Xk.sum(axis=0)) / kappa
        psi = (nu0 - d - 1) * np.diag(s2)
        for c in range(3):
            Xc = X_train[y_train == c]
            xbar = Xc.mean(axis=0) if len(Xc) else m0
            psi = psi + (Xc - xbar).T @ (Xc - xbar)
            psi = psi + kappa0 * len(Xc) / (kappa0 + len(Xc)) * np.outer(xbar - m0, xbar - m0)
        dof = nu - d + 1
        shape = psi * (kappa + 1) / (kappa * dof)
        return stats.multivariate_t(loc=mean, shape=shape, df=dof).logpdf(x)

    result = SharedCovarianceGaussian().fit(X, y).loo(X, y)
    expected = brute_force_loo(X, y, student_t)
    np.testing.assert_allclose(result.elpd_i.values, expected, rtol=1e-10, atol=1e-12)
    assert result.elpd == pytest.approx(expected.sum(), rel=1e-12)
    assert isinstance(result, az.ELPDDataLOO)


def test_gaussian_nb_exact_loo_matches_brute_force_refits():
    X, y = gaussian_classes([9, 12], 2, 2, seed=23)
    m0, s2 = X.mean(axis=0), X.var(axis=0)
    kappa0, nu0 = 0.01, 3.0

    def student_t(X_train, y_train, x, k):
        Xk = X_train[y_train == k]
        kappa = kappa0 + len(Xk)
        mean = (kappa0 * m0 + Xk.sum(axis=0)) / kappa
        xbar = Xk.mean(axis=0)
        shape = nu0 / 2 + len(Xk) / 2
        rate = (nu0 - 2) * s2 / 2 + 0.5 * ((Xk - xbar) ** 2).sum(axis=0)
        rate = rate + kappa0 * len(Xk) * (xbar - m0) ** 2 / (2 * kappa)
        scale = np.sqrt(rate * (kappa + 1) / (shape * kappa))
        return stats.t(df=2 * shape, loc=mean, scale=scale).logpdf(x).sum()

    result = NaiveBayes().fit(X, y).loo(X, y)
    np.testing.assert_allclose(
        result.elpd_i.values, brute_force_loo(X, y, student_t), rtol=1e-10, atol=1e-13
    )


def test_bernoulli_nb_exact_loo_matches_brute_force_refits():
    X, y = binary_features(25, 3, 4, seed=24)
    beta0 = 0.7

    def beta_bernoulli(X_train, y_train, x, k):
        Xk = X_train[y_train == k]
        prob = (beta0 + Xk.sum(axis=0)) / (2 * beta0 + len(Xk))
        return stats.bernoulli(prob).logpmf(x).sum()

    result = NaiveBayes("bernoulli", beta_prior=beta0).fit(X, y).loo(X, y)
    np.testing.assert_allclose(
        result.elpd_i.values, brute_force_loo(X, y, beta_bernoulli), rtol=1e-10, atol=1e-13
    )


def test_posterior_predictive_matches_monte_carlo():
    # p(x, y=k | D) in closed form (Dirichlet mean x Student-t) is the posterior
    # mean of pi_k N(x; mu_k, Sigma): compare with the draws of sample_posterior.
    X, y = gaussian_classes([12, 10], 2, 2, seed=25)
    model = SharedCovarianceGaussian()
    tree = model.fit(X, y).sample_posterior(draws=10000, chains=2, random_state=6, X=X, y=y)
    post = tree.posterior
    pi = post["class_prior"].values.reshape(-1, 2)
    mean = post["mean"].values.reshape(-1, 2, 2)
    cov = post["covariance"].values.reshape(-1, 2, 2)
    x_new = np.array([[0.3, -0.5], [2.0, 1.0]])
    closed = model.posterior_.log_predictive(x_new)
    for k in range(2):
        centred = x_new[None] - mean[:, k, None, :]
        quad = np.einsum("snd,sde,sne->sn", centred, np.linalg.inv(cov), centred)
        density = (
            pi[:, k, None] * np.exp(-quad / 2) / (2 * np.pi * np.sqrt(np.linalg.det(cov)))[:, None]
        )
        estimate = density.mean(axis=0)
        se = density.std(axis=0) / np.sqrt(len(density)) / estimate
        np.testing.assert_array_less(np.abs(np.log(estimate) - closed[:, k]), 5 * se)


def test_az_compare_accepts_exact_loo_beside_psis_loo():
    X, y = gaussian_classes([30, 25], 2, 2, seed=27)
    X = X + np.random.default_rng(27).normal(scale=2.0, size=X.shape)  # overlapping classes
    exact = SharedCovarianceGaussian().fit(X, y).loo(X, y)
    tree = NaiveBayes().fit(X, y).sample_posterior(draws=1000, chains=2, random_state=7, X=X, y=y)
    table = az.compare({"lda": exact, "naive_bayes": tree}, round_to="none")
    assert set(table.index) == {"lda", "naive_bayes"}
    assert table.loc["lda", "elpd"] == pytest.approx(exact.elpd)
    assert table.loc["naive_bayes", "elpd"] == pytest.approx(az.loo(tree).elpd)
    # The same model's PSIS-LOO estimates a slightly different predictive (see loo's
    # docstring); the conditional log-likelihood makes the two agree closely.
    psis = az.loo(SharedCovarianceGaussian().fit(X, y).sample_posterior(random_state=8, X=X, y=y))
    assert exact.elpd == pytest.approx(psis.elpd, abs=0.5)


# Every elpd_i is about -1e-100, so ArviZ's sanity check sees elpd == elpd_i.
@pytest.mark.filterwarnings("ignore:The point-wise LOO is the same:UserWarning")
def test_log_likelihood_keeps_precision_near_certainty(monkeypatch):
    # Two well-separated classes: p(y_i | x_i) rounds to 1 in double precision, but
    # log p = -log1p(exp(-|eta|)) is representable; PSIS needs the distinct values.
    X, y = gaussian_classes([40, 40], 2, 2, seed=28)
    X[y == 1] += 12.0
    model = SharedCovarianceGaussian()
    tree = model.fit(X, y).sample_posterior(draws=200, chains=2, random_state=9, X=X, y=y)
    eta = (
        np.einsum("nd,cmd->cmn", X, tree.posterior["coef"].values)
        + tree.posterior["intercept"].values[..., None]
    )
    sign = np.where(y == 1, 1.0, -1.0)
    expected = -np.log1p(np.exp(-sign * eta))
    log_lik = tree.log_likelihood["y"].values
    assert np.all(log_lik < 0) and log_lik.max() > -1e-16  # beyond log-sum-exp precision
    np.testing.assert_allclose(log_lik, expected, rtol=1e-9)
    assert np.isfinite(az.loo(tree).elpd)
    # Evaluating the draws in small blocks gives the same numbers.
    monkeypatch.setattr("problogreg.posterior.draws.BLOCK_ELEMENTS", 7)
    blocked = model.fit(X, y).sample_posterior(draws=200, chains=2, random_state=9, X=X, y=y)
    # (Equal up to the rounding of BLAS products of another shape.)
    np.testing.assert_allclose(blocked.log_likelihood["y"].values, log_lik, rtol=1e-12)
