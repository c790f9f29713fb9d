"""Likelihood and objective derivatives against finite differences and naive formulas.

Every reference here is computed independently of the package: loss by an explicit
softmax loop, gradients and Hessians by central finite differences, Gram matrices by
a plain matrix product with ``diag(w)``.
"""

import decimal
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import sparse

from problogreg.core import numerics
from problogreg.core.layout import helmert_basis
from problogreg.core.likelihood import SoftmaxLikelihood
from problogreg.core.numerics import log_softmax, weighted_gram
from problogreg.core.objective import PosteriorObjective
from problogreg.core.priors import ResolvedPrior

FD_STEP = 1e-5


def central_gradient(func, theta, step=FD_STEP):
    """Central finite-difference gradient, truncation error O(step**2)."""
    grad = np.empty_like(theta)
    for j in range(len(theta)):
        e = np.zeros_like(theta)
        e[j] = step
        grad[j] = (func(theta + e) - func(theta - e)) / (2 * step)
    return grad


def central_jacobian(func, theta, step=FD_STEP):
    """Central finite-difference Jacobian of a vector function (column j = d func / d theta_j)."""
    columns = []
    for j in range(len(theta)):
        e = np.zeros_like(theta)
        e[j] = step
        columns.append((func(theta + e) - func(theta - e)) / (2 * step))
    return np.column_stack(columns)


def naive_negative_log_likelihood(X, y, weights, intercept, coef, reference):
    """-sum_i s_i log p_{i y_i}, with p from an explicit per-sample softmax."""
    total = 0.0
    for x_i, y_i, s_i in zip(X, y, weights, strict=True):
        eta = intercept + coef @ x_i
        logits = np.concatenate([[0.0], eta]) if reference else eta
        shifted = logits - logits.max()
        probs = np.exp(shifted) / np.exp(shifted).sum()
        total -= s_i * np.log(probs[y_i])
    return total


def make_problem(n_classes, reference, weighted, seed=0, n=40, d=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.arange(n) % n_classes  # every class present
    rng.shuffle(y)
    weights = rng.uniform(0.2, 3.0, size=n) if weighted else np.ones(n)
    likelihood = SoftmaxLikelihood(X, y, weights, n_classes, reference=reference)
    theta = rng.normal(scale=0.7, size=likelihood.n_params)
    return likelihood, theta


LIKELIHOOD_CASES = {
    "binary": dict(n_classes=2, reference=True, weighted=False),
    "binary-weighted": dict(n_classes=2, reference=True, weighted=True),
    "symmetric": dict(n_classes=4, reference=False, weighted=False),
    "symmetric-weighted": dict(n_classes=3, reference=False, weighted=True),
    "reference": dict(n_classes=4, reference=True, weighted=False),
    "reference-weighted": dict(n_classes=3, reference=True, weighted=True),
}


@pytest.fixture(params=list(LIKELIHOOD_CASES), ids=list(LIKELIHOOD_CASES))
def problem(request):
    return make_problem(**LIKELIHOOD_CASES[request.param])


def test_loss_matches_naive_softmax(problem):
    likelihood, theta = problem
    intercept, coef = likelihood.unpack(theta)
    expected = naive_negative_log_likelihood(
        likelihood.X, likelihood.y, likelihood.sample_weight, intercept, coef, likelihood.reference
    )
    assert_allclose(likelihood.loss(theta), expected, rtol=1e-12)
    # loss_gradient reports the same loss.
    assert_allclose(likelihood.loss_gradient(theta)[0], expected, rtol=1e-12)


def test_gradient_matches_finite_differences(problem):
    likelihood, theta = problem
    _, gradient = likelihood.loss_gradient(theta)
    assert_allclose(gradient, central_gradient(likelihood.loss, theta), rtol=1e-7, atol=1e-7)


def test_hessian_matches_finite_differences(problem):
    likelihood, theta = problem
    hessian = likelihood.hessian(theta)
    fd = central_jacobian(lambda t: likelihood.loss_gradient(t)[1], theta)
    assert_allclose(hessian, fd, rtol=1e-7, atol=1e-7)
    assert_allclose(hessian, hessian.T, rtol=0, atol=1e-12)


def test_subsampled_hessian_is_the_subsets_hessian_with_scaled_weights(problem):
    """Independent reference: a likelihood built on the subset's rows, weights times n / |R|."""
    likelihood, theta = problem
    n = len(likelihood.y)
    index = np.sort(np.random.default_rng(3).choice(n, size=n // 2, replace=False))
    rows = likelihood.row_subsample(index)
    scaled_weights = likelihood.sample_weight[index] * n / (n // 2)
    assert_allclose(rows.sample_weight, scaled_weights, rtol=1e-15)
    on_subset = SoftmaxLikelihood(
        likelihood.X[index],
        likelihood.y[index],
        scaled_weights,
        likelihood.n_classes,
        likelihood.reference,
    )
    expected = on_subset.hessian(theta)
    assert_allclose(likelihood.hessian(theta, rows), expected, rtol=1e-12, atol=1e-12)
    every_row = likelihood.row_subsample(np.arange(n))
    assert_allclose(likelihood.hessian(theta, every_row), likelihood.hessian(theta), rtol=1e-13)


def exact_log_sigmoid(eta: float) -> float:
    """log(1 / (1 + e^-eta)) in 400-digit decimal arithmetic (e^-700 needs over 300)."""
    with decimal.localcontext() as context:
        context.prec = 400
        return float(-(1 + decimal.Decimal(-eta).exp()).ln())


@pytest.mark.parametrize("eta", [-800.0, -40.0, -5.0, -1e-10, 0.0, 3.0, 40.0, 700.0])
def test_binary_log_probabilities_have_full_relative_precision(eta):
    # Two copies of one sample, labelled 0 and 1: their log-likelihoods are log p_0, log p_1.
    likelihood = SoftmaxLikelihood(np.ones((2, 1)), np.array([0, 1]), np.ones(2), 2, True)
    log_p = likelihood.pointwise_log_likelihood(np.array([0.0, eta]))
    expected = [exact_log_sigmoid(-eta), exact_log_sigmoid(eta)]
    assert_allclose(log_p, expected, rtol=4 * np.finfo(float).eps, atol=0)
    # The gradient's residual p_1 - y is computed from the same probabilities.
    _, gradient = likelihood.loss_gradient(np.array([0.0, eta]))
    assert_allclose(gradient[0], 2 * np.exp(expected[1]) - 1, rtol=1e-13, atol=1e-300)


def test_pointwise_log_likelihood_sums_to_weighted_loss(problem):
    likelihood, theta = problem
    pointwise = likelihood.pointwise_log_likelihood(theta)
    assert np.all(pointwise <= 0)
    assert_allclose(-likelihood.sample_weight @ pointwise, likelihood.loss(theta), rtol=1e-12)


def test_results_do_not_depend_on_call_history(problem):
    """Evaluations at other points, in-place changes to theta and to returned arrays
    (as solvers do) never leak into later results."""
    likelihood, theta = problem
    X, y, w = likelihood.X, likelihood.y, likelihood.sample_weight

    def fresh():
        return SoftmaxLikelihood(X, y, w, likelihood.n_classes, likelihood.reference)

    expected_loss, expected_gradient = fresh().loss_gradient(theta)
    expected_hessian = fresh().hessian(theta)
    expected_pointwise = fresh().pointwise_log_likelihood(theta)

    reused = fresh()
    work = theta.copy()
    _, gradient = reused.loss_gradient(work)
    gradient[:] = 0.0
    reused.pointwise_log_likelihood(work)[:] = 0.0
    work += 0.3  # mutate in place, then come back
    reused.loss_gradient(work)
    reused.hessian(work)
    work -= 0.3
    work[:] = theta  # exact original values again
    loss, gradient = reused.loss_gradient(work)
    assert loss == pytest.approx(expected_loss, rel=1e-14)
    assert_allclose(gradient, expected_gradient, rtol=1e-14, atol=1e-14)
    assert_allclose(reused.hessian(work), expected_hessian, rtol=1e-14, atol=1e-14)
    assert_allclose(
        reused.pointwise_log_likelihood(work), expected_pointwise, rtol=1e-14, atol=1e-14
    )


def test_symmetric_binary_is_rejected():
    X = np.zeros((4, 1))
    with pytest.raises(ValueError, match="Two classes"):
        SoftmaxLikelihood(X, np.array([0, 1, 0, 1]), np.ones(4), 2, reference=False)


@pytest.mark.parametrize("n, d", [(1, 1), (7, 3), (50, 6)])
def test_weighted_gram_matches_naive_product(n, d):
    rng = np.random.default_rng(n + d)
    X = rng.normal(size=(n, d))
    weights = rng.uniform(0, 2, size=n)
    weights[0] = 0.0
    expected = X.T @ np.diag(weights) @ X
    gram = weighted_gram(X, weights)
    assert_allclose(gram, expected, rtol=1e-12, atol=1e-12)
    assert np.array_equal(gram, gram.T)


def test_weighted_gram_accepts_fortran_and_sliced_input():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 8))
    weights = rng.uniform(size=30)
    for view in (np.asfortranarray(X), X[:, ::2], X[::3]):
        w = weights[: view.shape[0]]
        assert_allclose(weighted_gram(view, w), view.T @ (w[:, None] * view), rtol=1e-12)


@pytest.mark.parametrize("n, d", [(1200, 300), (600, 2100)])
def test_weighted_gram_with_intercept_over_tiles_and_blocks(n, d):
    """Widths over several tiles of the triangle copy and rows over several blocks; the
    intercept column is part of every block's rank-k update."""
    rng = np.random.default_rng(d)
    X = rng.normal(size=(n, d))
    weights = rng.uniform(size=n)
    design = np.column_stack([np.ones(n), X])
    gram = weighted_gram(X, weights, intercept=True)
    assert_allclose(gram, (design.T * weights) @ design, rtol=1e-12, atol=1e-10)
    assert np.array_equal(gram, gram.T)


@pytest.mark.parametrize("n, d", [(7, 3), (300, 4000)])
def test_rows_times_squares_matches_the_square_of_x(n, d):
    """Over several slabs of rows (300 rows of 4000 columns), dense and sparse alike."""
    rng = np.random.default_rng(d)
    X = rng.normal(size=(n, d))
    rows = rng.uniform(size=(2, n))
    expected = rows @ (X * X)
    assert_allclose(numerics.rows_times_squares(X, rows), expected, rtol=1e-12)
    X[np.abs(X) < 1.0] = 0.0
    assert_allclose(
        numerics.rows_times_squares(sparse.csr_matrix(X), rows), rows @ (X * X), rtol=1e-12
    )


def test_thread_scratch_is_kept_per_name_and_thread(monkeypatch):
    first = numerics.thread_scratch("test", (3, 4))
    again = numerics.thread_scratch("test", (2, 5))
    assert np.shares_memory(first, again) and again.shape == (2, 5)
    assert not np.shares_memory(first, numerics.thread_scratch("other", (3, 4)))
    elsewhere = []
    worker = threading.Thread(
        target=lambda: elsewhere.append(numerics.thread_scratch("test", (3, 4)))
    )
    worker.start()
    worker.join()
    assert not np.shares_memory(first, elsewhere[0])
    monkeypatch.setattr(numerics, "SCRATCH_LIMIT_BYTES", 8 * 11)
    assert not np.shares_memory(first, numerics.thread_scratch("test", (3, 4)))
    ones = numerics.thread_prefix(np.ones, 5)
    assert np.array_equal(ones, np.ones(5)) and not ones.flags.writeable
    assert np.array_equal(numerics.thread_prefix(np.arange, 7), np.arange(7))
    assert np.array_equal(numerics.thread_prefix(np.arange, 3), np.arange(3))


def test_weighted_gram_on_many_rows():
    """Enough rows that any blocking or chunking over rows is exercised."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(20_011, 3))
    weights = rng.uniform(size=len(X))
    assert_allclose(weighted_gram(X, weights), (X.T * weights) @ X, rtol=1e-10)


# -- PosteriorObjective ---------------------------------------------------------------

OBJECTIVE_CASES = {
    # (likelihood case, coefficient scale, intercept scale)
    "binary-map": ("binary-weighted", 1.5, 4.0),
    "binary-flat-intercept": ("binary", 1.5, np.inf),
    "reference-mle": ("reference", np.inf, np.inf),
    "reference-map-weighted": ("reference-weighted", 0.8, 3.0),
    "symmetric-proper": ("symmetric", 2.0, 5.0),
    "symmetric-helmert": ("symmetric", 2.0, np.inf),
    "symmetric-helmert-weighted": ("symmetric-weighted", 0.5, np.inf),
}


@pytest.fixture(params=list(OBJECTIVE_CASES), ids=list(OBJECTIVE_CASES))
def objective_problem(request):
    case, coef_scale, intercept_scale = OBJECTIVE_CASES[request.param]
    likelihood, _ = make_problem(**LIKELIHOOD_CASES[case])
    d = likelihood.n_features
    # Per-feature scales differ so a wrong tiling of the prior would show.
    scales = coef_scale * np.linspace(0.5, 1.5, d)
    prior = ResolvedPrior(coef_scale=scales, intercept_scale=intercept_scale)
    objective = PosteriorObjective(likelihood, prior)
    phi = np.random.default_rng(2).normal(scale=0.6, size=objective.n_params)
    return objective, phi


def naive_objective(objective, phi):
    """Negative log-likelihood of the full parameters plus 0.5 * sum(param**2 / scale**2)."""
    likelihood, prior = objective.likelihood, objective.prior
    m, d = likelihood.n_rows, likelihood.n_features
    if objective.layout.sum_to_zero:
        contrasts = phi[: m - 1]
        # Any sum-to-zero intercept vector with these Helmert coordinates.
        intercept = helmert_basis(m) @ contrasts
        coef = phi[m - 1 :].reshape(m, d)
        penalty_intercept = 0.0
    else:
        intercept, coef = phi[:m], phi[m:].reshape(m, d)
        penalty_intercept = 0.5 * np.sum(intercept**2) / prior.intercept_scale**2
    penalty_coef = 0.5 * np.sum(coef**2 / prior.coef_scale**2)
    nll = naive_negative_log_likelihood(
        likelihood.X, likelihood.y, likelihood.sample_weight, intercept, coef, likelihood.reference
    )
    return nll + penalty_coef + penalty_intercept


def test_objective_value_matches_naive(objective_problem):
    objective, phi = objective_problem
    assert_allclose(objective.value(phi), naive_objective(objective, phi), rtol=1e-12)


def test_objective_gradient_matches_finite_differences(objective_problem):
    objective, phi = objective_problem
    value, gradient = objective.value_gradient(phi)
    assert_allclose(value, objective.value(phi), rtol=1e-13)
    assert_allclose(gradient, central_gradient(objective.value, phi), rtol=1e-7, atol=1e-7)


def test_objective_hessian_matches_finite_differences(objective_problem):
    objective, phi = objective_problem
    fd = central_jacobian(lambda p: objective.value_gradient(p)[1], phi)
    assert_allclose(objective.hessian(phi), fd, rtol=1e-7, atol=1e-7)


def test_layout_jacobian_maps_free_to_likelihood(objective_problem):
    objective, phi = objective_problem
    layout = objective.layout
    jac = layout.jacobian()
    assert jac.shape == (objective.likelihood.n_params, objective.n_params)
    assert_allclose(jac @ phi, layout.to_likelihood(phi), rtol=1e-13, atol=1e-15)
    assert_allclose(layout.from_likelihood(layout.to_likelihood(phi)), phi, atol=1e-13)
    # Stacks of draws map row by row.
    stack = np.vstack([phi, 2 * phi])
    assert_allclose(layout.to_likelihood(stack), stack @ jac.T, rtol=1e-13, atol=1e-15)
    # The Hessian pulls back as T^T H T.
    hessian = objective.likelihood.hessian(layout.to_likelihood(phi))
    assert_allclose(layout.pull_hessian(hessian), jac.T @ hessian @ jac, rtol=1e-12, atol=1e-12)


def test_helmert_intercepts_sum_to_zero():
    likelihood, _ = make_problem(**LIKELIHOOD_CASES["symmetric"])
    prior = ResolvedPrior(coef_scale=np.ones(likelihood.n_features), intercept_scale=np.inf)
    objective = PosteriorObjective(likelihood, prior)
    layout = objective.layout
    assert layout.sum_to_zero
    assert objective.n_params == likelihood.n_params - 1
    phi = np.random.default_rng(0).normal(size=(5, objective.n_params))
    intercept, _ = layout.class_rows(layout.to_likelihood(phi))
    assert intercept.shape == (5, likelihood.n_classes)
    assert_allclose(intercept.sum(axis=1), 0.0, atol=1e-13)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_helmert_basis_is_orthonormal_sum_to_zero(n_classes):
    basis = helmert_basis(n_classes)
    assert basis.shape == (n_classes, n_classes - 1)
    assert_allclose(basis.T @ basis, np.eye(n_classes - 1), atol=1e-14)
    assert_allclose(basis.sum(axis=0), 0.0, atol=1e-14)


def test_intercept_coef_layout():
    reference, _ = make_problem(**LIKELIHOOD_CASES["reference"])
    prior = ResolvedPrior(coef_scale=np.full(3, np.inf), intercept_scale=np.inf)
    layout = PosteriorObjective(reference, prior).layout
    phi = np.arange(layout.n_free, dtype=float) + 1
    intercept, coef = layout.estimator_rows(layout.to_likelihood(phi))
    assert intercept.shape == (4,) and coef.shape == (4, 3)
    assert intercept[0] == 0 and np.all(coef[0] == 0)
    assert_allclose(intercept[1:], [1, 2, 3])
    assert_allclose(coef[1:].ravel(), phi[3:])
    assert layout.coefficient_index(1, 2) == 3 + 1 * 3 + 2
    assert phi[layout.coefficient_index(1, 2)] == coef[2, 2]

    binary, _ = make_problem(**LIKELIHOOD_CASES["binary"])
    layout = PosteriorObjective(binary, prior).layout
    intercept, coef = layout.estimator_rows(np.array([0.5, 1.0, 2.0, 3.0]))
    assert intercept.shape == (1,) and coef.shape == (1, 3)
    assert_allclose(coef, [[1.0, 2.0, 3.0]])
    assert layout.likelihood_labels(["a", "b"], ["u", "v", "w"]) == ["intercept", "u", "v", "w"]


# -- numerical stability (property tests) ---------------------------------------------

extreme = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    logits=st.lists(st.lists(extreme, min_size=3, max_size=3), min_size=1, max_size=5),
    reference=st.booleans(),
)
def test_probabilities_stay_valid_for_extreme_predictors(logits, reference):
    eta = np.array(logits)
    n, k = eta.shape
    n_classes = k + 1 if reference else k
    # X = I (one indicator feature per sample) and coef = eta.T give X @ coef.T == eta.
    X = np.eye(n)
    likelihood = SoftmaxLikelihood(
        X, np.zeros(n, dtype=int), np.ones(n), n_classes, reference=reference
    )
    theta = likelihood.pack(np.zeros(k), eta.T)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_p = log_softmax(np.column_stack([np.zeros(n), eta]) if reference else eta)
        pointwise = likelihood.pointwise_log_likelihood(theta)
        loss, gradient = likelihood.loss_gradient(theta)
        hessian = likelihood.hessian(theta)
    assert_allclose(pointwise, log_p[:, 0], rtol=1e-12, atol=1e-300)
    proba = np.exp(log_p)
    assert np.all(np.isfinite(log_p)) and np.all(log_p <= 0)
    assert np.all((proba >= 0) & (proba <= 1))
    # log p = z - logsumexp(z) carries the rounding of the logits themselves.
    resolution = 8 * np.finfo(float).eps * max(1.0, np.abs(eta).max())
    assert np.all(np.abs(proba.sum(axis=1) - 1.0) <= resolution)
    assert np.isfinite(loss) and np.all(np.isfinite(gradient)) and np.all(np.isfinite(hessian))
