"""MAPLogisticRegression as a scikit-learn estimator: API, invariances, multiclass forms."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from problogreg.core import hessian_form as forms
from problogreg.core import minimize as minimize_module
from problogreg.core.likelihood import SoftmaxLikelihood
from problogreg.models.map import MAPLogisticRegression


@parametrize_with_checks([MAPLogisticRegression()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def make_data(n=120, d=3, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.arange(1, d + 1)
    weights = rng.normal(size=(d, n_classes))
    y = np.argmax(X @ weights + rng.gumbel(size=(n, n_classes)), axis=1)
    return X, y


@pytest.fixture(scope="module")
def multiclass():
    return make_data()


@pytest.fixture(scope="module")
def binary():
    return make_data(n_classes=2, seed=1)


# -- scikit-learn machinery ------------------------------------------------------------


def test_pipeline_grid_search_and_cross_validation(multiclass):
    X, y = multiclass
    pipe = make_pipeline(StandardScaler(), MAPLogisticRegression(autoscale=False))
    grid = {"maplogisticregression__prior_scale": [0.01, 1.0]}
    search = GridSearchCV(pipe, grid, cv=3, scoring="neg_log_loss")
    search.fit(X, y)
    assert search.best_params_["maplogisticregression__prior_scale"] == 1.0
    # Same folds, same model as scikit-learn's (the documented C equivalence): same scores.
    ours = MAPLogisticRegression(prior_scale=1.0, intercept_prior_scale=None, autoscale=False)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000)
    scores = cross_val_score(ours, X, y, cv=3, scoring="neg_log_loss")
    assert_allclose(
        scores, cross_val_score(reference, X, y, cv=3, scoring="neg_log_loss"), rtol=1e-6
    )


def test_string_labels_round_trip(multiclass):
    X, y = multiclass
    names = np.array(["setosa", "virginica", "versicolor"])
    model = MAPLogisticRegression().fit(X, names[y])
    assert list(model.classes_) == sorted(names)
    assert set(model.predict(X)) <= set(names)
    numeric = MAPLogisticRegression().fit(X, y)
    order = [list(names).index(c) for c in model.classes_]
    assert_allclose(model.predict_proba(X), numeric.predict_proba(X)[:, order], atol=1e-10)
    assert model.score(X, names[y]) == numeric.score(X, y)


def test_dataframe_keeps_feature_names_and_labels_summary(multiclass):
    X, y = multiclass
    frame = pd.DataFrame(X, columns=["height", "weight", "age"])
    labels = pd.Series(np.array(["a", "b", "c"])[y], name="group")
    model = MAPLogisticRegression().fit(frame, labels)
    assert list(model.feature_names_in_) == ["height", "weight", "age"]
    assert model.n_features_in_ == 3
    table = model.summary()
    assert list(table.index) == [
        (c, term) for c in "abc" for term in ("intercept", "height", "weight", "age")
    ]
    assert_allclose(table["estimate"], np.column_stack([model.intercept_, model.coef_]).ravel())
    array_model = MAPLogisticRegression().fit(X, y)
    assert not hasattr(array_model, "feature_names_in_")
    assert list(array_model.summary().index.get_level_values("term")[:4]) == [
        "intercept",
        "x0",
        "x1",
        "x2",
    ]
    assert_allclose(array_model.coef_, model.coef_, atol=1e-12)


def test_binary_attributes(binary):
    X, y = binary
    model = MAPLogisticRegression().fit(X, y)
    assert model.multiclass_ == "binary"
    assert model.coef_.shape == (1, 3) and model.intercept_.shape == (1,)
    assert model.hessian_.shape == (4, 4)
    assert model.decision_function(X).shape == (120,)
    z = model.decision_function(X)
    assert_allclose(model.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-12)
    expected = np.column_stack([-np.logaddexp(0, z), -np.logaddexp(0, -z)])
    assert_allclose(model.predict_log_proba(X), expected, rtol=1e-12)
    assert list(model.summary().index.get_level_values("class").unique()) == [1]


# -- fitted quantities against closed forms ----------------------------------------------


def naive_binary_gradient(theta, X, y, w, precision):
    """Gradient of sum_i w_i log(1 + exp(-(2y_i-1) eta_i)) + 0.5 theta' diag(prec) theta."""
    X1 = np.column_stack([np.ones(len(X)), X])
    p = 1 / (1 + np.exp(-(X1 @ theta)))
    return X1.T @ (w * (p - y)) + precision * theta


def test_binary_hessian_and_log_posterior(binary):
    X, y = binary
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=len(y))
    model = MAPLogisticRegression(prior_scale=1.5, intercept_prior_scale=4.0).fit(
        X, y, sample_weight=w
    )
    theta = np.r_[model.intercept_, model.coef_[0]]
    precision = np.r_[1 / 16, 1 / model.prior_scale_**2]
    assert_allclose(
        model.prior_scale_, 1.5 / np.sqrt(np.cov(X.T, aweights=w, bias=True).diagonal())
    )
    # KKT: the penalised score vanishes at the optimum.
    gradient = naive_binary_gradient(theta, X, y, w, precision)
    assert np.max(np.abs(gradient)) < 1e-7
    step = 1e-6
    fd = np.column_stack(
        [
            (
                naive_binary_gradient(theta + step * e, X, y, w, precision)
                - naive_binary_gradient(theta - step * e, X, y, w, precision)
            )
            / (2 * step)
            for e in np.eye(4)
        ]
    )
    assert_allclose(model.hessian_, fd, rtol=1e-6, atol=1e-8)
    log_p = model.predict_log_proba(X)[np.arange(len(y)), y]
    assert_allclose(model.log_likelihood_, w @ log_p, rtol=1e-12)
    log_prior = (
        stats.norm(0, 4.0).logpdf(theta[0])
        + stats.norm(0, model.prior_scale_).logpdf(theta[1:]).sum()
    )
    assert_allclose(model.log_posterior_, model.log_likelihood_ + log_prior, rtol=1e-12)
    # Refitting as an MLE drops the posterior attribute, which no longer applies.
    model.set_params(prior_scale=None, intercept_prior_scale=None).fit(X, y, sample_weight=w)
    assert not hasattr(model, "log_posterior_")


def test_symmetric_standard_errors_are_pseudo_inverse_of_full_hessian(multiclass):
    """With flat intercepts the full Hessian is singular only along the common intercept
    shift; the sum-to-zero covariance is then its Moore-Penrose pseudo-inverse."""
    X, y = multiclass
    model = MAPLogisticRegression(prior_scale=2.0, intercept_prior_scale=None, autoscale=False)
    model.fit(X, y)
    assert model.hessian_.shape == (2 + 9, 2 + 9)
    likelihood = SoftmaxLikelihood(X, y, np.ones(len(y)), 3, reference=False)
    theta = np.r_[model.intercept_, model.coef_.ravel()]
    hessian = likelihood.hessian(theta) + np.diag(np.r_[np.zeros(3), np.full(9, 0.25)])
    std_error = np.sqrt(np.diag(np.linalg.pinv(hessian)))
    # Parameters are intercepts first; the summary lists each class's intercept and slopes.
    class_major = [i for k in range(3) for i in [k, 3 + 3 * k, 4 + 3 * k, 5 + 3 * k]]
    assert_allclose(model.summary()["std_error"], std_error[class_major], rtol=1e-8)


def test_symmetric_map_rows_sum_to_zero(multiclass):
    """The likelihood ignores a common shift of all rows, so at the MAP the penalty's
    gradient along it vanishes: each coefficient column (and, with a proper prior,
    the intercepts) sums to zero."""
    X, y = multiclass
    for intercept_prior_scale in (None, 3.0):
        model = MAPLogisticRegression(intercept_prior_scale=intercept_prior_scale).fit(X, y)
        assert model.multiclass_ == "symmetric"
        assert_allclose(model.coef_.sum(axis=0), 0.0, atol=1e-8)
        assert abs(model.intercept_.sum()) < 1e-8


# -- multiclass parametrisations ---------------------------------------------------------


def test_symmetric_with_flat_coefficient_prior_is_refused(multiclass):
    X, y = multiclass
    with pytest.raises(ValueError, match="multiclass='symmetric' needs a proper"):
        MAPLogisticRegression(prior_scale=None, multiclass="symmetric").fit(X, y)
    with pytest.raises(ValueError, match="multiclass='symmetric' needs a proper"):
        MAPLogisticRegression(prior_scale=[1.0, np.inf, 1.0], multiclass="symmetric").fit(X, y)


def test_auto_multiclass_follows_the_coefficient_prior(multiclass):
    X, y = multiclass
    assert MAPLogisticRegression().fit(X, y).multiclass_ == "symmetric"
    assert MAPLogisticRegression(prior_scale=None).fit(X, y).multiclass_ == "reference"


def test_reference_stores_zero_row_for_first_class(multiclass):
    X, y = multiclass
    labels = np.array(["x", "y", "z"])[y]
    model = MAPLogisticRegression(multiclass="reference").fit(X, labels)
    assert model.coef_.shape == (3, 3) and model.intercept_.shape == (3,)
    assert np.all(model.coef_[0] == 0) and model.intercept_[0] == 0
    assert model.hessian_.shape == (8, 8)
    table = model.summary()
    assert list(table.index.get_level_values("class").unique()) == ["y", "z"]
    # Logits relative to the reference class reproduce the probabilities.
    logits = X @ model.coef_.T + model.intercept_
    assert_allclose(model.predict_proba(X), softmax(logits), rtol=1e-12)


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_symmetric_and_reference_agree_when_prior_vanishes(multiclass):
    """The MLE (reference) is the limit of the symmetric MAP as the prior flattens:
    probabilities agree and symmetric row differences give the reference rows."""
    X, y = multiclass
    mle = MAPLogisticRegression(prior_scale=None, intercept_prior_scale=None).fit(X, y)
    near_flat = MAPLogisticRegression(
        prior_scale=1e4, intercept_prior_scale=None, multiclass="symmetric"
    ).fit(X, y)
    assert_allclose(near_flat.predict_proba(X), mle.predict_proba(X), atol=1e-6)
    assert_allclose(near_flat.coef_ - near_flat.coef_[0], mle.coef_, atol=1e-5)
    assert_allclose(near_flat.intercept_ - near_flat.intercept_[0], mle.intercept_, atol=1e-5)
    assert_allclose(near_flat.log_likelihood_, mle.log_likelihood_, rtol=1e-9)


def test_reference_and_symmetric_differ_under_a_strong_prior(multiclass):
    """They are different models when the prior matters (the prior is not shift-invariant)."""
    X, y = multiclass
    symmetric = MAPLogisticRegression(prior_scale=0.1, multiclass="symmetric").fit(X, y)
    reference = MAPLogisticRegression(prior_scale=0.1, multiclass="reference").fit(X, y)
    assert np.max(np.abs(symmetric.predict_proba(X) - reference.predict_proba(X))) > 1e-3


# -- solvers -------------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 4])
def test_solvers_agree(n_classes):
    X, y = make_data(n_classes=n_classes, seed=3)
    fits = {
        solver: MAPLogisticRegression(solver=solver).fit(X, y)
        for solver in ("auto", "newton", "lbfgs")
    }
    for solver in ("auto", "lbfgs"):
        assert fits[solver].converged_
        assert_allclose(fits[solver].coef_, fits["newton"].coef_, atol=1e-6)
        assert_allclose(fits[solver].intercept_, fits["newton"].intercept_, atol=1e-6)
    assert fits["lbfgs"].hessian_ is None
    with pytest.raises(ValueError, match="solver='newton'"):
        fits["lbfgs"].summary()


def test_auto_solver_goes_hessian_free_when_the_hessian_would_not_fit(monkeypatch, multiclass):
    X, y = multiclass
    newton_fit = MAPLogisticRegression(solver="newton").fit(X, y)
    monkeypatch.setattr(forms, "DENSE_HESSIAN_MAX_BYTES", 8 * 10**2)  # < 12 parameters
    auto = MAPLogisticRegression().fit(X, y)
    assert auto.hessian_ is None and auto.converged_
    assert_allclose(auto.coef_, newton_fit.coef_, atol=1e-6)
    with pytest.raises(MemoryError, match="solver='lbfgs' or 'auto'"):
        MAPLogisticRegression(solver="newton").fit(X, y)


def test_convergence_warning_when_max_iter_is_too_small(multiclass):
    X, y = multiclass
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        model = MAPLogisticRegression(solver="newton", max_iter=1).fit(X, y)
    assert not model.converged_ and model.n_iter_ == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MAPLogisticRegression(solver="newton").fit(X, y)
    assert model.converged_ and 1 < model.n_iter_ < 20


#: Two solver paths agree to about tol in the coefficients; compare them at a tight tol.
TIGHT_TOL = 1e-12


def large_binary(n=4000, d=3, seed=11, rare_rows=0):
    """Enough rows per parameter (>= 512) for the default solver to subsample Hessians.

    ``rare_rows`` > 0 adds a 0/1 feature that is 1 on that many rows, with both labels there.
    """
    X, y = make_data(n=n, d=d, n_classes=2, seed=seed)
    if rare_rows:
        rare = np.zeros(n)
        rare[:rare_rows] = 1.0
        y[:rare_rows] = np.arange(rare_rows) % 2
        X = np.column_stack([X, rare])
    return X, y


@pytest.fixture
def hessian_calls(monkeypatch):
    """Record, for every Hessian the likelihood forms, whether it was subsampled."""
    calls = []
    exact_hessian = SoftmaxLikelihood.hessian

    def recording_hessian(self, theta, rows=None):
        calls.append(rows is not None)
        return exact_hessian(self, theta, rows)

    monkeypatch.setattr(SoftmaxLikelihood, "hessian", recording_hessian)
    return calls


def test_stops_at_the_rounding_floor_of_an_ill_conditioned_hessian():
    """Two columns equal to within 1e-8 under a weak prior: at tol=1e-12 the Newton step
    stays rounding noise above the step test (it ran to max_iter with a warning), so
    the solver stops where the decrement no longer falls, at the optimum scikit-learn's
    newton-cholesky reaches (C = prior_scale**2), with no warning."""
    rng = np.random.default_rng(0)
    n = 300
    X = rng.standard_normal((n, 3))
    X = np.column_stack([X, X[:, 0] + 1e-8 * rng.standard_normal(n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - X[:, 1])))).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MAPLogisticRegression(
            prior_scale=1e3, intercept_prior_scale=None, autoscale=False, tol=1e-12
        ).fit(X, y)
    assert model.n_iter_ < 20
    reference = LogisticRegression(C=1e6, solver="newton-cholesky", tol=1e-12, max_iter=10_000).fit(
        X, y
    )
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-10)


def test_rounding_floor_needs_a_stalled_decrement_below_the_objectives_rounding():
    """Quadratic convergence never stalls; a decrement that stops falling (below a
    quarter of its smallest value so far) stops the solver only once it is below f's
    rounding error, after FLOOR_STALL_STEPS such iterations in a row; one iteration is
    counted once."""
    from problogreg.core.solver_result import (
        FLOOR_STALL_STEPS,
        RoundingFloor,
        objective_rounding,
    )

    value = 7.6
    floor = objective_rounding(value)
    converging = RoundingFloor()
    assert not any(
        converging.reached(i, decrement, value) for i, decrement in enumerate([1e-20, 1e-40, 0.0])
    )
    stalled = RoundingFloor()
    bouncing = [1e-25, 3e-25, 2e-26, 2e-25, 1e-25]
    verdicts = [stalled.reached(i, decrement, value) for i, decrement in enumerate(bouncing)]
    assert FLOOR_STALL_STEPS == 2 and verdicts == [False, False, False, False, True]
    assert stalled.reached(4, bouncing[4], value)  # the same iteration again: unchanged
    above = RoundingFloor()
    assert not any(above.reached(i, 10 * floor, value) for i in range(10))


@pytest.mark.parametrize("prior_scale", [2.5, None])
def test_subsampled_start_gives_the_exact_newton_answer(hessian_calls, prior_scale):
    X, y = large_binary()
    weights = np.random.default_rng(0).uniform(0.2, 5.0, size=len(y))
    auto = MAPLogisticRegression(prior_scale=prior_scale, tol=TIGHT_TOL)
    auto.fit(X, y, sample_weight=weights)
    subsampled, exact = sum(hessian_calls), hessian_calls.count(False)
    assert subsampled >= 2 and exact <= 3
    hessian_calls.clear()
    exact_newton = MAPLogisticRegression(prior_scale=prior_scale, solver="newton", tol=TIGHT_TOL)
    exact_newton.fit(X, y, sample_weight=weights)
    assert not any(hessian_calls)
    assert auto.converged_
    assert_allclose(auto.coef_, exact_newton.coef_, rtol=1e-9)
    assert_allclose(auto.intercept_, exact_newton.intercept_, rtol=1e-9)
    # hessian_ is the exact Hessian at the optimum, not a subsample's.
    assert_allclose(auto.hessian_, exact_newton.hessian_, rtol=1e-8)
    assert_allclose(auto.summary()["std_error"], exact_newton.summary()["std_error"], rtol=1e-8)


def test_no_subsampling_without_enough_rows_per_parameter(hessian_calls):
    X, y = large_binary(n=511 * 4)  # 4 parameters: one row short of 512 each
    MAPLogisticRegression().fit(X, y)
    assert hessian_calls and not any(hessian_calls)


def test_singular_subsample_hessian_falls_back_to_all_rows(monkeypatch, hessian_calls):
    """A rare feature the subset never sees leaves its Hessian singular under a flat prior."""
    X, y = large_binary(rare_rows=40)
    assert np.all(X[40:, -1] == 0)

    def subset_without_the_rare_rows(likelihood, n_params):
        return likelihood.row_subsample(
            np.arange(40, 40 + minimize_module.SUBSAMPLE_MIN_ROWS_PER_PARAM * n_params)
        )

    monkeypatch.setattr(minimize_module, "hessian_subsample", subset_without_the_rare_rows)
    auto = MAPLogisticRegression(prior_scale=None, tol=TIGHT_TOL).fit(X, y)
    assert hessian_calls[0] and not any(hessian_calls[1:])  # one failed attempt, then exact
    exact_newton = MAPLogisticRegression(prior_scale=None, solver="newton", tol=TIGHT_TOL)
    exact_newton.fit(X, y)
    assert auto.converged_
    assert_allclose(auto.coef_, exact_newton.coef_, rtol=1e-9)


def test_unrepresentative_subsample_still_reaches_the_optimum(monkeypatch, hessian_calls):
    """A subset of one class only gives poor steps: exact Newton takes over and finishes."""
    X, y = large_binary()
    first_class = np.flatnonzero(y == 0)[:300]

    def one_class_subset(likelihood, n_params):
        return likelihood.row_subsample(first_class)

    monkeypatch.setattr(minimize_module, "hessian_subsample", one_class_subset)
    auto = MAPLogisticRegression(tol=TIGHT_TOL).fit(X, y)
    exact_newton = MAPLogisticRegression(solver="newton", tol=TIGHT_TOL).fit(X, y)
    assert auto.converged_ and hessian_calls[0] and not hessian_calls[-1]
    assert_allclose(auto.coef_, exact_newton.coef_, rtol=1e-9)


def test_convergence_warning_during_the_subsampled_steps(hessian_calls):
    X, y = large_binary()
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        model = MAPLogisticRegression(max_iter=2).fit(X, y)
    # Both steps were subsampled ones; the returned Hessian is exact.
    assert hessian_calls == [True, True, True, False]
    assert not model.converged_ and model.n_iter_ == 2


# -- invariances -----------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("prior_scale", [2.5, None])
def test_row_order_invariance(n_classes, prior_scale):
    X, y = make_data(n_classes=n_classes, seed=4)
    order = np.random.default_rng(0).permutation(len(y))
    a = MAPLogisticRegression(prior_scale=prior_scale).fit(X, y)
    b = MAPLogisticRegression(prior_scale=prior_scale).fit(X[order], y[order])
    assert_allclose(b.coef_, a.coef_, rtol=1e-8, atol=1e-10)
    assert_allclose(b.intercept_, a.intercept_, rtol=1e-8, atol=1e-10)


def test_permuted_labels_permute_symmetric_rows(multiclass):
    X, y = multiclass
    permutation = np.array([2, 0, 1])  # old code -> new code
    a = MAPLogisticRegression().fit(X, y)
    b = MAPLogisticRegression().fit(X, permutation[y])
    assert_allclose(b.coef_[permutation], a.coef_, atol=1e-8)
    assert_allclose(b.predict_proba(X)[:, permutation], a.predict_proba(X), atol=1e-10)


def test_reference_mle_probabilities_do_not_depend_on_the_reference(multiclass):
    X, y = multiclass
    mle = dict(prior_scale=None, intercept_prior_scale=None, tol=1e-11)
    a = MAPLogisticRegression(**mle).fit(X, y)
    b = MAPLogisticRegression(**mle).fit(X, np.array([2, 0, 1])[y])
    assert_allclose(b.predict_proba(X)[:, [2, 0, 1]], a.predict_proba(X), atol=1e-9)
    assert_allclose(a.log_likelihood_, b.log_likelihood_, rtol=1e-12)


def test_swapped_binary_labels_negate_parameters(binary):
    X, y = binary
    a = MAPLogisticRegression().fit(X, y)
    b = MAPLogisticRegression().fit(X, np.where(y == 1, "no", "yes"))
    assert list(b.classes_) == ["no", "yes"]  # "yes" = old class 0 is now classes_[1]
    assert_allclose(b.coef_, -a.coef_, atol=1e-10)
    assert_allclose(b.intercept_, -a.intercept_, atol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_feature_scaling_with_autoscale(n_classes):
    X, y = make_data(n_classes=n_classes, seed=5)
    factors = np.array([1e-3, 7.0, 1e4])
    a = MAPLogisticRegression().fit(X, y)
    b = MAPLogisticRegression().fit(X * factors, y)
    assert_allclose(b.coef_ * factors, a.coef_, rtol=1e-7, atol=1e-10)
    assert_allclose(b.intercept_, a.intercept_, rtol=1e-7, atol=1e-10)
    assert_allclose(b.predict_proba(X * factors), a.predict_proba(X), atol=1e-10)
    assert_allclose(b.prior_scale_ * factors, a.prior_scale_, rtol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("prior_scale", [1.0, None])
def test_integer_weights_equal_repeated_rows(n_classes, prior_scale):
    X, y = make_data(n=60, n_classes=n_classes, seed=6)
    repeats = np.random.default_rng(1).integers(0, 4, size=len(y))
    repeats[:n_classes] = 1  # keep every class present
    weighted = MAPLogisticRegression(prior_scale=prior_scale).fit(X, y, sample_weight=repeats)
    repeated = MAPLogisticRegression(prior_scale=prior_scale).fit(
        np.repeat(X, repeats, axis=0), np.repeat(y, repeats)
    )
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-8, atol=1e-10)
    assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-8, atol=1e-10)
    assert_allclose(weighted.prior_scale_, repeated.prior_scale_, rtol=1e-12)
    assert_allclose(weighted.log_likelihood_, repeated.log_likelihood_, rtol=1e-10)
    assert_allclose(weighted.summary()["std_error"], repeated.summary()["std_error"], rtol=1e-7)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_mle_does_not_depend_on_the_scale_of_the_weights(n_classes):
    """Multiplying every weight by c multiplies the log-likelihood by c: same MLE."""
    X, y = make_data(n=60, n_classes=n_classes, seed=7)
    flat = dict(prior_scale=None, intercept_prior_scale=None)
    unit = MAPLogisticRegression(**flat).fit(X, y)
    for factor in (1e-3, 1e-6, 1e-9, 1e6):
        scaled = MAPLogisticRegression(**flat).fit(X, y, sample_weight=np.full(60, factor))
        assert scaled.converged_
        assert_allclose(scaled.coef_, unit.coef_, rtol=1e-7, atol=1e-9)


def test_unit_weights_equal_no_weights(multiclass):
    X, y = multiclass
    a = MAPLogisticRegression().fit(X, y)
    b = MAPLogisticRegression().fit(X, y, sample_weight=np.ones(len(y)))
    assert_allclose(a.coef_, b.coef_, rtol=1e-12, atol=1e-14)


# -- property tests ---------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_classes=st.integers(2, 4),
    prior_scale=st.floats(0.1, 10.0),
    intercept_prior_scale=st.one_of(st.none(), st.floats(0.5, 20.0)),
)
def test_penalised_score_vanishes_at_the_optimum(
    seed, n_classes, prior_scale, intercept_prior_scale
):
    """KKT conditions in closed form: X'(P - Y) + W / s^2 = 0 and sum(P - Y) + b / t^2 = 0."""
    X, y = make_data(n=40, d=2, n_classes=n_classes, seed=seed)
    if len(np.unique(y)) < n_classes:
        y[:n_classes] = np.arange(n_classes)
    # tol bounds the remaining Newton step in curvature units, not the score itself: a
    # strong prior (prior_scale 0.1) allows a score of ~1e-6 at the default tol.
    model = MAPLogisticRegression(
        prior_scale=prior_scale,
        intercept_prior_scale=intercept_prior_scale,
        autoscale=False,
        tol=1e-10,
    ).fit(X, y)
    residual = model.predict_proba(X) - np.eye(n_classes)[y]
    if n_classes == 2:
        residual = residual[:, 1:]
    intercept_precision = 0.0 if intercept_prior_scale is None else intercept_prior_scale**-2
    coef_score = residual.T @ X + model.coef_ / prior_scale**2
    intercept_score = residual.sum(axis=0) + model.intercept_ * intercept_precision
    assert np.max(np.abs(coef_score)) < 1e-6
    if intercept_prior_scale is None and n_classes > 2:
        # Only intercept contrasts are free: the score is orthogonal to the common shift.
        intercept_score = intercept_score - intercept_score.mean()
    assert np.max(np.abs(intercept_score)) < 1e-6


@pytest.fixture(scope="module")
def fitted_models(binary, multiclass):
    return [MAPLogisticRegression().fit(X, y) for X, y in (binary, multiclass)]


@settings(max_examples=30, deadline=None)
@given(magnitude=st.floats(1.0, 1e12), seed=st.integers(0, 1000))
def test_predictions_for_extreme_inputs_are_valid(fitted_models, magnitude, seed):
    rng = np.random.default_rng(seed)
    for model in fitted_models:
        X_new = rng.normal(size=(5, model.n_features_in_)) * magnitude
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            proba = model.predict_proba(X_new)
            log_proba = model.predict_log_proba(X_new)
            logits = model.decision_function(X_new)
        assert np.all((proba >= 0) & (proba <= 1))
        assert np.all(np.isfinite(log_proba)) and np.all(log_proba <= 0)
        # log p = z - logsumexp(z) is exact up to the rounding of the logits themselves.
        resolution = 8 * np.finfo(float).eps * max(1.0, np.abs(logits).max())
        assert np.all(np.abs(proba.sum(axis=1) - 1.0) <= resolution)
