"""Firth's bias-reduced estimator (the Jeffreys prior) and unit-free separation detection.

References: the published logistf estimates on the endometrial data (Heinze & Schemper
2002), an independent implementation of Firth's modified-score iteration written
here with hat values (not the package's trace formula), and finite differences of a
penalised log-likelihood computed from scratch.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, log_softmax

import problogreg as plr
from problogreg import datasets
from problogreg.core import separation
from problogreg.core.jeffreys import JeffreysPenalty
from problogreg.core.likelihood import SoftmaxLikelihood

#: logistf(HG ~ NV + PI + EH, data = endometrial): intercept, NV, PI, EH.
LOGISTF_ENDOMETRIAL = np.array([3.77455951, 2.92927330, -0.03475175, -2.60416387])
MLE = {"prior_scale": None, "intercept_prior_scale": None}


def endometrial():
    frame = datasets.table("endometrial")
    return frame[["NV", "PI", "EH"]], frame["HG"].to_numpy()


def firth_reference(X, y, weights=None, tol=1e-13, max_iter=500):
    """Firth (1993) for binary logistic regression: Fisher scoring on the modified score
    U* = A'(s(y - p) + h(1/2 - p)), h the hat values of W^1/2 A (I^-1) A' W^1/2, with
    step halving on the penalised log-likelihood. Returns the estimate and I^-1."""
    A = np.column_stack([np.ones(len(y)), np.asarray(X, dtype=float)])
    s = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)

    def penalised(beta):
        eta = A @ beta
        log_lik = s @ (y * eta - np.logaddexp(0, eta))
        p = expit(eta)
        info = A.T @ ((s * p * (1 - p))[:, None] * A)
        return log_lik + 0.5 * np.linalg.slogdet(info)[1]

    beta = np.zeros(A.shape[1])
    for _ in range(max_iter):
        p = expit(A @ beta)
        w = s * p * (1 - p)
        info_inverse = np.linalg.inv(A.T @ (w[:, None] * A))
        hat = w * np.einsum("ij,jk,ik->i", A, info_inverse, A)
        step = info_inverse @ (A.T @ (s * (y - p) + hat * (0.5 - p)))
        t = 1.0
        while penalised(beta + t * step) < penalised(beta) - 1e-12 and t > 1e-10:
            t /= 2
        beta = beta + t * step
        if np.max(np.abs(t * step)) < tol:
            break
    p = expit(A @ beta)
    return beta, np.linalg.inv(A.T @ ((s * p * (1 - p))[:, None] * A))


def test_firth_reproduces_logistf_on_the_endometrial_data():
    """Firth's estimate on HG ~ NV + PI + EH: logistf's published values, and the
    inverse-Fisher standard errors of an independent implementation."""
    X, y = endometrial()
    model = plr.MAPLogisticRegression(prior="jeffreys").fit(X, y)
    estimate = np.concatenate([model.intercept_, model.coef_[0]])
    np.testing.assert_allclose(estimate, LOGISTF_ENDOMETRIAL, atol=1e-6)
    reference, covariance = firth_reference(X, y)
    np.testing.assert_allclose(estimate, reference, atol=1e-8)
    table = model.summary()
    np.testing.assert_allclose(table["std_error"], np.sqrt(np.diag(covariance)), atol=1e-5)
    assert model.converged_


def test_the_mle_on_the_endometrial_data_is_refused_with_nv_named():
    """NV quasi-separates HG (Heinze & Schemper 2002): the MLE does not exist."""
    X, y = endometrial()
    with pytest.raises(plr.SeparationError, match=r"quasi-completely separable.*\[NV\]"):
        plr.MAPLogisticRegression(**MLE).fit(X, y)


@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_a_timestamp_column_does_not_hide_the_separation(noise):
    """Adding Unix timestamps (~1.7e9) once claimed NV was constant, or hid the separation."""
    X, y = endometrial()
    X = X.assign(time=1.7e9 + noise * np.random.default_rng(0).normal(size=len(y)))
    with pytest.raises(plr.SeparationError, match=r"quasi-completely separable.*\[NV\]"):
        plr.MAPLogisticRegression(**MLE).fit(X, y)


@pytest.mark.parametrize("scale", [1.0, 1e-6, 1e-8, 1e-9, 1e-12, 1e9])
def test_complete_separation_is_found_in_any_units(scale):
    """x > 0 separates y: named as complete separation by x0 whatever the units of x
    (s = 1e-8 gave a garbled message, s = 1e-9 a silent 'converged' fit)."""
    x = np.random.default_rng(0).normal(size=40)
    with pytest.raises(plr.SeparationError, match=r"completely separable.*x0.*every sample"):
        plr.MAPLogisticRegression(**MLE).fit((x * scale)[:, None], (x > 0).astype(int))


def test_firth_is_finite_under_complete_separation_and_matches_the_reference():
    x = np.random.default_rng(1).normal(size=30)
    X, y = x[:, None], (x > 0).astype(int)
    model = plr.MAPLogisticRegression(prior="jeffreys").fit(X, y)
    reference, covariance = firth_reference(X, y)
    np.testing.assert_allclose([model.intercept_[0], model.coef_[0, 0]], reference, atol=1e-7)
    np.testing.assert_allclose(model.hessian_, np.linalg.inv(covariance), rtol=1e-6)
    assert np.all(np.isfinite(model.coef_)) and model.converged_


def test_firth_with_weights_equals_repeated_rows():
    X, y = endometrial()
    weights = np.arange(len(y)) % 3 + 1
    weighted = plr.MAPLogisticRegression(prior="jeffreys").fit(X, y, sample_weight=weights)
    repeated = plr.MAPLogisticRegression(prior="jeffreys").fit(
        X.loc[X.index.repeat(weights)], np.repeat(y, weights)
    )
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-8)
    reference, _ = firth_reference(X, y, weights)
    np.testing.assert_allclose(weighted.coef_[0], reference[1:], atol=1e-7)


def penalised_multinomial(theta, X, y, n_classes):
    """log L + 1/2 log|I| of the reference multinomial model, computed from scratch."""
    n, d = X.shape
    m = n_classes - 1
    intercept, coef = theta[:m], theta[m:].reshape(m, d)
    logits = np.column_stack([np.zeros(n), X @ coef.T + intercept])
    log_p = log_softmax(logits, axis=1)
    p = np.exp(log_p)[:, 1:]
    A = np.column_stack([np.ones(n), X])
    info = np.zeros((m * (d + 1), m * (d + 1)))
    for i in range(n):
        W = np.diag(p[i]) - np.outer(p[i], p[i])
        info += np.kron(W, np.outer(A[i], A[i]))  # class-major blocks of (1, x)
    return log_p[np.arange(n), y].sum() + 0.5 * np.linalg.slogdet(info)[1]


def test_multinomial_firth_is_the_mode_of_the_penalised_likelihood():
    """brmultinom's estimator: the penalised log-likelihood has zero gradient there
    (finite differences of an independent implementation) and it is a maximum."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 2))
    y = np.argmax(X @ [[0.0, 1.0, -1.0], [0.0, -0.5, 1.0]] + rng.gumbel(size=(60, 3)), axis=1)
    model = plr.MAPLogisticRegression(prior="jeffreys").fit(X, y)
    assert model.multiclass_ == "reference"
    theta = np.concatenate([model.intercept_[1:], np.ravel(model.coef_[1:])])

    def penalised(flat):
        # |I| does not depend on the order of the parameters, so the class-major
        # blocks of the reference need no reordering.
        return penalised_multinomial(flat, X, y, 3)

    step = 1e-5
    gradient = [
        (penalised(theta + e) - penalised(theta - e)) / (2 * step)
        for e in np.eye(len(theta)) * step
    ]
    np.testing.assert_allclose(gradient, 0.0, atol=1e-5)
    for direction in rng.normal(size=(5, len(theta))):
        assert penalised(theta + 1e-3 * direction) < penalised(theta)
    assert model.log_posterior_ == pytest.approx(penalised(theta), rel=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3, 4])
def test_jeffreys_gradient_matches_finite_differences(n_classes):
    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(50, 3))
    likelihood = SoftmaxLikelihood(
        X, np.arange(50) % n_classes, rng.uniform(0.5, 2, 50), n_classes, reference=True
    )
    penalty = JeffreysPenalty(likelihood)
    theta = rng.normal(scale=0.5, size=likelihood.n_params)
    value, gradient = penalty.value_gradient(theta)
    assert value == pytest.approx(-0.5 * np.linalg.slogdet(likelihood.hessian(theta))[1])
    step = 1e-6
    fd = [
        (penalty.value(theta + e) - penalty.value(theta - e)) / (2 * step)
        for e in np.eye(len(theta)) * step
    ]
    np.testing.assert_allclose(gradient, fd, atol=1e-7)


def test_laplace_with_the_jeffreys_prior():
    """The Gaussian at Firth's estimate with the inverse Fisher information; no evidence."""
    X, y = endometrial()
    laplace = plr.LaplaceLogisticRegression(prior="jeffreys").fit(X, y)
    map_fit = plr.MAPLogisticRegression(prior="jeffreys").fit(X, y)
    np.testing.assert_allclose(laplace.coef_, map_fit.coef_)
    np.testing.assert_allclose(laplace.posterior_cov_ @ map_fit.hessian_, np.eye(4), atol=1e-8)
    with pytest.raises(plr.UndefinedEvidenceError, match="Jeffreys"):
        laplace.log_evidence_  # noqa: B018
    check = laplace.check_approximation(X, y, draws=400, random_state=0)
    assert np.isfinite(check.pareto_k) and np.all(np.isfinite(check.mean))
    assert np.isfinite(laplace.loo(X, y, draws=400).elpd)
    with pytest.raises(ValueError, match="undefined under a flat or Jeffreys prior"):
        plr.LaplaceLogisticRegression(prior="jeffreys", optimize_prior=True).fit(X, y)


def test_jeffreys_needs_the_reference_parametrisation():
    X = np.random.default_rng(3).normal(size=(30, 2))
    with pytest.raises(ValueError, match="multiclass='reference'"):
        plr.MAPLogisticRegression(prior="jeffreys", multiclass="symmetric").fit(
            X, np.arange(30) % 3
        )


# -- separation does not depend on units ------------------------------------------------
def separation_verdict(X, y, n_classes):
    """(none | quasi | complete, class pairs, separating features) from the LP."""
    likelihood = SoftmaxLikelihood(X, y, np.ones(len(y)), n_classes, reference=True)
    found = separation.find_separation(likelihood, np.arange(likelihood.n_params))
    if found is None:
        return ("none",)
    m, d = likelihood.n_rows, X.shape[1]
    features = sorted({int(j - m) % d for j in found.parameters if j >= m})
    kind = "complete" if found.complete else "quasi"
    return kind, tuple(found.class_pairs), tuple(features), found.n_strict


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_classes=st.sampled_from([2, 3]),
    separable=st.sampled_from(["complete", "quasi", "none"]),
    exponents=st.lists(st.integers(-12, 12), min_size=3, max_size=3),
    offsets=st.lists(st.sampled_from([0.0, 1.0, -1e3, 1.7e9]), min_size=3, max_size=3),
    constant_column=st.sampled_from([None, 1.0, 1.7e9]),
)
def test_separation_verdict_is_invariant_to_column_units_and_offsets(
    seed, n_classes, separable, exponents, offsets, constant_column
):
    """Scaling columns by 10^k (k in [-12, 12]), shifting them, and appending a constant
    column change neither the verdict nor the separating features."""
    rng = np.random.default_rng(seed)
    n = 30
    X = rng.normal(size=(n, 3))
    if separable == "none":
        y = np.arange(n) % n_classes
        rng.shuffle(y)
    else:
        y = np.digitize(X[:, 0], np.quantile(X[:, 0], np.linspace(0, 1, n_classes + 1)[1:-1]))
        if separable == "quasi":
            X[: n // 3, 0] = np.round(X[: n // 3, 0])  # ties on the boundary
            X[:, 0] = np.where(np.isin(np.arange(n), np.arange(n // 3)), 0.0, X[:, 0])
            y = np.where(X[:, 0] == 0.0, np.arange(n) % n_classes, y)
    if len(np.unique(y)) < n_classes:
        return
    reference = separation_verdict(X, y, n_classes)
    transformed = X * 10.0 ** np.array(exponents) + np.array(offsets) * 10.0 ** np.array(exponents)
    if constant_column is not None:
        transformed = np.column_stack([transformed, np.full(n, constant_column)])
    assert separation_verdict(transformed, y, n_classes) == reference
