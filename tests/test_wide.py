"""Wide data (d > n): the dual (Woodbury) Newton solver against the dense Hessian.

References are independent of the dual form: the dense Hessian of the objective
(itself checked against finite differences in test_likelihood.py), numpy's solve
and slogdet on it, and scikit-learn's LogisticRegression at a tight tolerance.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import sparse
from sklearn.linear_model import LogisticRegression

import problogreg as plr
from problogreg.core import hessian_form as forms
from problogreg.core import kernel_newton
from problogreg.core.kernel_newton import KernelNewtonSolver, kernel_newton_applies
from problogreg.core.likelihood import SoftmaxLikelihood
from problogreg.core.newton_variants import DualNewtonSolver
from problogreg.core.numerics import single_precision, weighted_mean_variance
from problogreg.core.objective import PosteriorObjective
from problogreg.core.priors import ResolvedPrior
from problogreg.core.woodbury import DualSpace
from problogreg.models import _mode as mode_module
from problogreg.models._evidence import polish_maximum
from problogreg.posterior.gaussian import GaussianPosterior, logit_moments
from problogreg.posterior.refit_loo import student_t_draws
from problogreg.posterior.woodbury_gaussian import WoodburyGaussianPosterior


def wide_data(n=30, d=80, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d)
    W = rng.normal(size=(n_classes, d)) / np.sqrt(d) * 3
    y = np.argmax(X @ W.T + rng.gumbel(size=(n, n_classes)), axis=1)
    return X, y


CASES = {
    "binary": (2, True, 10.0),
    "binary_flat_intercept": (2, True, np.inf),
    "reference": (3, True, 10.0),
    "symmetric": (4, False, 10.0),
    "symmetric_flat_intercept": (3, False, np.inf),
}


def case_problem(case, tol):
    """Wide data and the estimator arguments of one of the CASES."""
    n_classes, reference, intercept_scale = CASES[case]
    X, y = wide_data(n_classes=n_classes)
    kwargs = {
        "intercept_prior_scale": None if np.isinf(intercept_scale) else intercept_scale,
        "multiclass": "reference" if reference else "symmetric",
        "tol": tol,
    }
    return X, y, kwargs


@pytest.mark.parametrize("case", list(CASES))
def test_woodbury_hessian_matches_the_dense_one(case):
    """H^{-1} g, diag(H) and log|H| of the dual form equal those of the dense Hessian."""
    n_classes, reference, intercept_scale = CASES[case]
    X, y = wide_data(n_classes=n_classes)
    rng = np.random.default_rng(1)
    weights = rng.uniform(0, 2, size=len(y))
    weights[:3] = 0.0
    likelihood = SoftmaxLikelihood(X, y, weights, n_classes, reference=reference)
    prior = ResolvedPrior(rng.uniform(0.2, 2.0, size=X.shape[1]), intercept_scale)
    objective = PosteriorObjective(likelihood, prior)
    phi = rng.normal(size=objective.n_params) * 0.3
    dense = objective.hessian(phi)
    woodbury = DualSpace(objective).curvature(phi)
    g = rng.normal(size=objective.n_params)
    assert_allclose(woodbury.solve(g), np.linalg.solve(dense, g), rtol=1e-9, atol=1e-12)
    assert_allclose(woodbury.diagonal(), np.diag(dense), rtol=1e-12)
    assert woodbury.log_determinant() == pytest.approx(np.linalg.slogdet(dense)[1], rel=1e-10)


def test_exact_hessian_uses_all_cores_only_when_large(monkeypatch):
    """The Hessian formed at the optimum runs on the solver's BLAS threads below
    ALL_CORES_MIN_OPERATIONS, on every core above it, with the same posterior."""
    import contextlib

    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append(True)
        yield

    monkeypatch.setattr(mode_module, "solver_blas_threads", recording)
    X, y = wide_data(n=40, d=120, n_classes=2, seed=1)
    small = plr.LaplaceLogisticRegression().fit(X, y)
    assert entered == [True]
    monkeypatch.setattr(mode_module, "ALL_CORES_MIN_OPERATIONS", 0.0)
    large = plr.LaplaceLogisticRegression().fit(X, y)
    assert entered == [True]
    assert_allclose(large.posterior_.marginal_sd(), small.posterior_.marginal_sd(), rtol=1e-12)


def test_hessian_form_rule(monkeypatch):
    """Dense when d is small against n, dual when n is small and d exceeds it, Newton-CG
    when d approaches or exceeds n at larger sizes or X is sparse, or when no exact form
    fits in memory."""

    def form(n, d, n_classes=2, prior_scale=1.0, sparse_density=None):
        X, y = wide_data(n=n, d=d, n_classes=n_classes)
        if sparse_density is not None:
            X = sparse.random(n, d, density=sparse_density, format="csr", random_state=0)
        likelihood = SoftmaxLikelihood(X, y, np.ones(n), n_classes, reference=True)
        scale = np.full(d, prior_scale)
        return forms.hessian_form(PosteriorObjective(likelihood, ResolvedPrior(scale, 10.0)))

    assert form(400, 20) == "dense"
    assert form(40, 400) == "dual"
    assert form(40, 400, n_classes=3) == "dual"
    assert form(40, 400, prior_scale=np.inf) != "dual"  # MLE has no Woodbury form
    assert form(2000, 1000) == "free"
    assert form(200, 2000, n_classes=3) == "dual"  # a 400-row factor, no pass over X
    assert form(1000, 2000) == "free"  # a 1000-row factor per step costs more
    assert form(5000, 200) == "free"
    assert form(2000, 1000, sparse_density=0.002) == "free"
    assert form(2000, 20, sparse_density=0.2) == "dense"
    monkeypatch.setattr(forms, "DENSE_HESSIAN_MAX_BYTES", 1000)
    assert form(400, 20) == "free"


@pytest.mark.parametrize("case", list(CASES))
def test_dual_newton_reaches_the_dense_newton_optimum(case, monkeypatch):
    """The dual path gives the optimum that exact dense Newton gives, to the tolerance."""
    X, y, kwargs = case_problem(case, tol=1e-10)
    dual = plr.MAPLogisticRegression(**kwargs).fit(X, y)
    assert dual.result_.hessian is None  # the dual path was taken
    assert dual.converged_
    monkeypatch.setattr(forms, "hessian_form", lambda objective: "dense")
    dense = plr.MAPLogisticRegression(solver="newton", **kwargs).fit(X, y)
    assert dense.result_.hessian is not None
    assert_allclose(dual.coef_, dense.coef_, atol=1e-7)
    assert_allclose(dual.intercept_, dense.intercept_, atol=1e-7)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_dual_newton_matches_scikit_learn(n_classes):
    """C = 1 ridge logistic regression with a flat intercept: scikit-learn's optimum."""
    X, y = wide_data(n=60, d=300, n_classes=n_classes, seed=3)
    ours = plr.MAPLogisticRegression(prior_scale=1.0, intercept_prior_scale=None, autoscale=False)
    ours.fit(X, y)
    assert ours.result_.hessian is None
    reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=100000).fit(X, y)
    assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-6)


# -- the Laplace posterior in dual form ---------------------------------------------------
def dense_twin(monkeypatch, X, y, **kwargs):
    """The same Laplace fit with the dense Hessian (the dual form switched off)."""
    monkeypatch.setattr(forms, "hessian_form", lambda objective: "dense")
    monkeypatch.setattr(forms, "exact_hessian_form", lambda objective: "dense")
    monkeypatch.setattr(mode_module, "exact_hessian_form", lambda objective: "dense")
    monkeypatch.setattr(mode_module, "exact_hessian_choice", lambda objective: ("dense", 0.0))
    return plr.LaplaceLogisticRegression(**kwargs).fit(X, y)


@pytest.mark.parametrize("case", list(CASES))
def test_woodbury_posterior_matches_the_dense_posterior(case, monkeypatch):
    """Mean, marginal sds, log|H|, evidence, log density, predictive moments and the
    covariance of the draws agree with the dense Cholesky-form posterior to 1e-8."""
    X, y, kwargs = case_problem(case, tol=1e-12)
    wide = plr.LaplaceLogisticRegression(**kwargs).fit(X, y)
    assert isinstance(wide.posterior_, WoodburyGaussianPosterior)
    dense = dense_twin(monkeypatch, X, y, **kwargs)
    assert isinstance(dense.posterior_, GaussianPosterior)
    q, p = wide.posterior_, dense.posterior_
    assert_allclose(q.mean, p.mean, atol=1e-8)
    assert_allclose(q.marginal_sd(), p.marginal_sd(), rtol=1e-8)
    assert_allclose(wide.posterior_cov_, dense.posterior_cov_, atol=1e-8)
    assert q.log_det_precision == pytest.approx(p.log_det_precision, rel=1e-10, abs=1e-8)
    assert wide.effective_n_params_ == pytest.approx(dense.effective_n_params_, rel=1e-8)
    if kwargs["intercept_prior_scale"] is not None:
        assert wide.log_evidence_ == pytest.approx(dense.log_evidence_, rel=1e-10, abs=1e-8)
    points = p.sample(5, np.random.default_rng(0))
    assert_allclose(q.log_density(points), p.log_density(points), rtol=1e-9)
    X_new = wide_data(n=7, n_classes=len(np.unique(y)), seed=9)[0]
    layout = wide.result_.layout
    for got, want in zip(
        logit_moments(q, layout, X_new), logit_moments(p, layout, X_new), strict=True
    ):
        assert_allclose(got, want, atol=1e-8)
    assert_allclose(wide.predict_proba(X_new), dense.predict_proba(X_new), atol=1e-8)
    assert_allclose(wide.summary()["sd"], dense.summary()["sd"], rtol=1e-8)
    map_summary = plr.MAPLogisticRegression(**kwargs).fit(X, y).summary()
    assert_allclose(map_summary["std_error"], dense.summary()["sd"], rtol=1e-8)


def test_woodbury_draws_have_the_posterior_covariance():
    """The exact sampler's draws: mean and covariance of the posterior (Monte Carlo error),
    and log_density_of_noise is the log density at the draws."""
    X, y = wide_data(n=12, d=20, n_classes=3)
    model = plr.LaplaceLogisticRegression(intercept_prior_scale=None, multiclass="reference")
    model.fit(X, y)
    assert isinstance(model.posterior_, WoodburyGaussianPosterior)
    posterior = model.posterior_
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((50000, posterior.noise_dim))
    draws = posterior.noise_to_draws(noise)
    cov = model.posterior_cov_
    sd = np.sqrt(np.diag(cov))
    assert_allclose(draws.mean(axis=0), posterior.mean, atol=5 * sd.max() / np.sqrt(50000))
    empirical = np.cov(draws, rowvar=False) / np.outer(sd, sd)
    assert_allclose(empirical, cov / np.outer(sd, sd), atol=0.025)
    assert_allclose(
        posterior.log_density_of_noise(noise[:5]), posterior.log_density(draws[:5]), rtol=1e-12
    )


# -- sparse input ---------------------------------------------------------------------------
def sparse_problem(n=300, d=60, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = sparse.random(n, d, density=0.08, format="csr", random_state=seed)
    X.data *= rng.uniform(0.5, 20.0, size=X.nnz)  # uneven units: autoscale matters
    W = rng.normal(size=(n_classes, d))
    y = np.argmax(X @ W.T + rng.gumbel(size=(n, n_classes)), axis=1)
    return X, y


@pytest.mark.parametrize("fmt", ["csr", "csc", "csr_array", "coo"])
@pytest.mark.parametrize("estimator", [plr.MAPLogisticRegression, plr.LaplaceLogisticRegression])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_sparse_fit_equals_the_dense_fit(fmt, estimator, n_classes):
    """Every scipy.sparse format gives the dense fit: coefficients, autoscaled prior
    (sds without centring), probabilities and (Laplace) marginal sds."""
    X, y = sparse_problem(n_classes=n_classes)
    weights = np.random.default_rng(1).uniform(0.2, 2.0, size=len(y))
    Xs = sparse.csr_array(X) if fmt == "csr_array" else X.asformat(fmt)
    got = estimator().fit(Xs, y, sample_weight=weights)
    want = estimator().fit(X.toarray(), y, sample_weight=weights)
    assert_allclose(got.prior_scale_, want.prior_scale_, rtol=1e-10)
    assert_allclose(got.coef_, want.coef_, rtol=1e-8, atol=1e-10)
    assert_allclose(got.predict_proba(Xs), want.predict_proba(X.toarray()), atol=1e-10)
    if estimator is plr.LaplaceLogisticRegression:
        assert_allclose(got.posterior_.marginal_sd(), want.posterior_.marginal_sd(), rtol=1e-8)


@pytest.mark.parametrize("shape", [(300, 60), (40, 400)], ids=["tall", "wide"])
def test_sparse_fit_never_densifies(shape, monkeypatch):
    """MAP and Laplace fits (dense and dual Hessian forms) never make X (or a block of
    its rows or columns) dense; Gram matrices (d x d, n x n) are dense by design."""
    X, y = sparse_problem(*shape)
    toarray = sparse.csr_matrix.toarray

    def refuse(matrix, *args, **kwargs):
        assert matrix.shape[0] == matrix.shape[1], f"{matrix.shape} made dense"
        return toarray(matrix, *args, **kwargs)

    for cls in (sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix):
        monkeypatch.setattr(cls, "toarray", refuse)
    plr.MAPLogisticRegression().fit(X, y)
    model = plr.LaplaceLogisticRegression().fit(X, y)
    assert np.isfinite(model.log_evidence_)


def test_sparse_autoscale_is_the_weighted_sd():
    """The sds of a sparse X, computed without centring, are numpy's weighted sds."""
    X, _ = sparse_problem()
    weights = np.random.default_rng(2).uniform(0.0, 3.0, size=X.shape[0])
    mean, variance = weighted_mean_variance(X, weights)
    dense = X.toarray()
    want_mean = np.average(dense, axis=0, weights=weights)
    assert_allclose(mean, want_mean, rtol=1e-12)
    assert_allclose(
        variance,
        np.average((dense - want_mean) ** 2, axis=0, weights=weights),
        rtol=1e-9,
        atol=1e-14,
    )


def test_sparse_input_errors_are_clear():
    """Jeffreys needs dense X (said so); non-finite and overflowing entries are named."""
    X, y = sparse_problem()
    with pytest.raises(ValueError, match="prior='jeffreys' needs a dense X"):
        plr.MAPLogisticRegression(prior="jeffreys").fit(X, y)
    model = plr.MAPLogisticRegression().fit(X, y)
    bad = X.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN in columns"):
        model.predict_proba(bad)
    bad.data[0] = 1e200
    with pytest.raises(ValueError, match="larger than 1e"):
        model.predict_proba(bad)


# -- Newton-CG (the Hessian-free form) ---------------------------------------------------
@pytest.mark.parametrize(
    "case", ["binary", "binary_flat_intercept", "reference", "symmetric_flat_intercept"]
)
def test_hessian_products_and_diagonal_match_the_dense_hessian(case):
    """The objective's Hessian-vector products and diagonal equal the dense Hessian's."""
    n_classes, reference, intercept_scale = CASES[case]
    X, y = wide_data(n_classes=n_classes)
    rng = np.random.default_rng(4)
    weights = rng.uniform(0, 2, size=len(y))
    likelihood = SoftmaxLikelihood(X, y, weights, n_classes, reference=reference)
    prior = ResolvedPrior(rng.uniform(0.2, 2.0, size=X.shape[1]), intercept_scale)
    objective = PosteriorObjective(likelihood, prior)
    phi = rng.normal(size=objective.n_params) * 0.3
    dense = objective.hessian(phi)
    vectors = rng.normal(size=(3, objective.n_params))
    assert_allclose(objective.hessian_product(phi, vectors), vectors @ dense, rtol=1e-10)
    assert_allclose(objective.hessian_diagonal(phi), np.diag(dense), rtol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_newton_cg_reaches_the_dense_newton_optimum(n_classes, sparse_input, monkeypatch):
    """Newton-CG (forced by the memory limit) converges by the same test to the same fit."""
    X, y = sparse_problem(n=400, d=40, n_classes=n_classes)
    X = X if sparse_input else X.toarray()
    kwargs = {"intercept_prior_scale": None, "tol": 1e-10}
    want = plr.MAPLogisticRegression(solver="newton", **kwargs).fit(X, y)
    assert want.hessian_ is not None
    monkeypatch.setattr(forms, "DENSE_HESSIAN_MAX_BYTES", 1000)
    got = plr.MAPLogisticRegression(**kwargs).fit(X, y)
    assert got.hessian_ is None and got.converged_
    assert_allclose(got.coef_, want.coef_, atol=1e-7)
    assert_allclose(got.intercept_, want.intercept_, atol=1e-7)


def test_student_t_proposal_of_the_woodbury_posterior():
    """Refit-LOO's multivariate t proposal: log q from (phi - mu)' H (phi - mu) with the
    dense Hessian, for draws of the dual-form posterior."""
    X, y = wide_data(n=12, d=20, n_classes=2)
    model = plr.LaplaceLogisticRegression().fit(X, y)
    posterior = model.posterior_
    assert isinstance(posterior, WoodburyGaussianPosterior)
    draws, log_q = student_t_draws(posterior, 50, np.random.default_rng(0), df=7.0)
    hessian = np.linalg.inv(model.posterior_cov_)
    offset = draws - posterior.mean
    quadratic = np.einsum("sp,pq,sq->s", offset, hessian, offset)
    assert_allclose(log_q, -0.5 * (7.0 + posterior.dim) * np.log1p(quadratic / 7.0), rtol=1e-8)


# -- Newton-CG in single precision, the curvature root, the separation shortcut -----------
@pytest.mark.parametrize("case", ["binary", "reference", "symmetric"])
def test_single_precision_products_are_accurate_to_float32(case):
    """Products that read X in float32 equal the dense Hessian's to ~1e-7 relative: far
    tighter than the residuals (>= 1e-4) Newton-CG asks of them."""
    n_classes, reference, intercept_scale = CASES[case]
    X, y = wide_data(n=200, d=300, n_classes=n_classes)
    likelihood = SoftmaxLikelihood(X, y, np.ones(len(y)), n_classes, reference=reference)
    objective = PosteriorObjective(likelihood, ResolvedPrior(np.ones(X.shape[1]), intercept_scale))
    rng = np.random.default_rng(1)
    phi = rng.normal(size=objective.n_params) * 0.1
    vectors = rng.normal(size=(2, objective.n_params))
    exact = vectors @ objective.hessian(phi)
    single = objective.hessian_product(phi, vectors, single=True)
    relative = np.abs(single - exact).max() / np.abs(exact).max()
    assert 1e-10 < relative < 1e-5  # float32 rounding, not float64's


def test_single_precision_copy_refuses_columns_outside_float32s_range():
    """A column in units that float32 cannot hold keeps Newton-CG in double precision,
    and the fit is the one the dense Newton solver gives."""
    X, y = wide_data(n=400, d=40)
    assert single_precision(X).dtype == np.float32
    for factor in (1e20, 1e-20):
        scaled = X.copy()
        scaled[:, 3] *= factor
        assert single_precision(scaled) is None
        assert single_precision(sparse.csr_matrix(scaled)) is None
    scaled = X.copy()
    scaled[:, 3] *= 1e20
    kwargs = {"intercept_prior_scale": None, "tol": 1e-10, "autoscale": False, "prior_scale": 1e25}
    want = plr.MAPLogisticRegression(solver="newton", **kwargs).fit(scaled, y)
    free = plr.MAPLogisticRegression(**kwargs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(forms, "hessian_form", lambda objective: "free")
        free.fit(scaled, y)
    assert free.converged_
    assert_allclose(free.predict_proba(scaled), want.predict_proba(scaled), atol=1e-8)
    # The Hessian Newton-CG did not keep is formed at the mode on first access.
    unit = 1 / np.sqrt(np.diag(want.hessian_))  # compare in units free of the 1e20
    assert_allclose(
        unit * free.hessian_ * unit[:, None], unit * want.hessian_ * unit[:, None], atol=1e-8
    )


@pytest.mark.parametrize("reference", [True, False])
def test_curvature_root_has_rank_k_minus_one_and_reproduces_the_curvature(reference):
    """K - 1 factors per sample whose outer products sum to s(diag(p) - pp'), also when
    probabilities underflow or one class is certain."""
    n_classes, n = 4, 6
    X = np.zeros((n, 1))
    y = np.arange(n) % n_classes
    likelihood = SoftmaxLikelihood(X, y, np.linspace(0.5, 2.0, n), n_classes, reference)
    intercepts = np.array(
        [
            [0.0, 1.0, -2.0, 0.5],
            [0, 800, 0, 0],  # class 1 certain
            [0, 0, -800, 3],  # class 2's probability underflows
            [5, 5, 5, 5],
            [0, 1, 2, 3],
            [0, -1, 0, 1],
        ]
    )
    for row in range(n):
        logits = intercepts[row] - intercepts[row, 0] if reference else intercepts[row]
        free = logits[1:] if reference else logits
        theta = likelihood.pack(free, np.zeros((len(free), 1)))
        root = likelihood.curvature_root(theta)
        assert root.shape == (n_classes - 1, len(free), n)
        p = np.exp(intercepts[row] - intercepts[row].max())
        p /= p.sum()
        s = likelihood.sample_weight
        want = s[:, None, None] * (np.diag(p) - np.outer(p, p))[None]
        want = want[:, 1:, 1:] if reference else want
        got = np.einsum("cki,cli->ikl", root, root)
        assert_allclose(got, want, atol=1e-15)


def test_no_separation_lp_when_only_intercepts_are_flat(monkeypatch):
    """Moving intercepts alone cannot separate classes that all carry weight: the LP is
    skipped. With flat coefficients it still runs (and finds these wide data separable)."""
    X, y = wide_data(n=40, d=60)
    calls = []
    find = mode_module.find_separation
    monkeypatch.setattr(
        mode_module, "find_separation", lambda *args: calls.append(1) or find(*args)
    )
    plr.MAPLogisticRegression(intercept_prior_scale=None, prior_scale=100.0).fit(X, y)
    assert calls == []
    with pytest.raises(plr.SeparationError):
        plr.MAPLogisticRegression(prior_scale=None).fit(X[:, :30], y)
    assert calls


def test_evidence_polish_lands_on_a_quadratic_maximum():
    """One Newton step from central differences finds a parabola's vertex exactly, from
    anywhere a search might have stopped."""
    vertex = 0.3
    for start in (0.25, 0.3001, 0.35):
        polished = polish_maximum(lambda x: 2.0 * (x - vertex) ** 2 - 5.0, start, 1e-3)
        assert polished == pytest.approx(vertex, abs=1e-9)
    assert polish_maximum(lambda x: -(x**2), 0.1, 1e-3) == 0.1  # not a minimum: unchanged


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_newton_takes_the_dual_newton_steps(case, monkeypatch):
    """Newton in the span of the data, (b_F, a), reaches the dual-form solver's optimum
    with weighted samples, in every layout, in the same number of steps when its line
    search does not extend full steps (they are the same Newton steps), and in fewer
    when it does; a warm start keeps the dual-form solver."""
    n_classes, reference, intercept_scale = CASES[case]
    X, y = wide_data(n=40, d=300, n_classes=n_classes, seed=5)
    weights = np.random.default_rng(2).uniform(0.2, 3.0, size=len(y))
    likelihood = SoftmaxLikelihood(X, y, weights, n_classes, reference=reference)
    scales = np.random.default_rng(3).uniform(0.3, 2.0, size=X.shape[1])
    objective = PosteriorObjective(likelihood, ResolvedPrior(scales, intercept_scale))
    start = np.zeros(objective.n_params)
    assert kernel_newton_applies(start) and not kernel_newton_applies(start + 0.1)
    extended = KernelNewtonSolver(objective, tol=1e-12, max_iter=100).solve()
    with monkeypatch.context() as patch:
        patch.setattr(kernel_newton, "LONGEST_STEP", 1.0)
        kernel = KernelNewtonSolver(objective, tol=1e-12, max_iter=100).solve()
    dual = DualNewtonSolver(objective, tol=1e-12, max_iter=100).solve(start)
    assert kernel.converged and dual.converged and extended.converged
    assert kernel.n_iter == dual.n_iter
    assert extended.n_iter < dual.n_iter
    for params in (kernel.params, extended.params):
        assert_allclose(params, dual.params, rtol=1e-8, atol=1e-11)
        _, gradient = objective.value_gradient(params)
        assert np.max(np.abs(gradient)) < 1e-9 * np.sum(weights)


def test_kernel_newton_stops_at_the_rounding_floor_when_the_step_test_cannot_pass(
    monkeypatch,
):
    """With the step test made impossible (threshold 0), the solver in the span of the
    data stops at the rounding floor: a few iterations after the decrement stops
    falling, at the optimum of the ordinary fit, reported as converged."""
    X, y = wide_data(n=40, d=300, n_classes=3, seed=5)
    likelihood = SoftmaxLikelihood(X, y, np.ones(len(y)), 3, reference=False)
    objective = PosteriorObjective(likelihood, ResolvedPrior(np.ones(X.shape[1]), 10.0))
    ordinary = KernelNewtonSolver(objective, tol=1e-10, max_iter=100).solve()
    monkeypatch.setattr(kernel_newton, "STEP_TOLERANCE_FACTOR", 0.0)
    floored = KernelNewtonSolver(objective, tol=1e-10, max_iter=100).solve()
    assert floored.converged and floored.stop_reason == "converged"
    assert ordinary.n_iter < floored.n_iter <= ordinary.n_iter + 6
    assert_allclose(floored.params, ordinary.params, rtol=1e-9, atol=1e-12)


def test_kernel_newton_line_search_doubles_an_accepted_full_step_while_it_helps():
    """From zero on wide data the full Newton step falls short: the line search takes the
    first of 1, 2, 4, 8 times it after which doubling no longer lowers the objective, and
    the point it moves to is the one of that step."""
    X, y = wide_data(n=60, d=600, n_classes=2, seed=1)
    likelihood = SoftmaxLikelihood(X, y, np.ones(len(y)), 2, reference=True)
    objective = PosteriorObjective(likelihood, ResolvedPrior(np.ones(X.shape[1]), np.inf))
    solver = KernelNewtonSolver(objective, tol=1e-10, max_iter=100)
    solver.setup()
    start = (solver.intercepts, solver.dual, solver.kernel_dual, solver.value)
    delta_b, delta_a, kernel_delta = solver.newton_step()
    slope = float(solver.gradient_intercepts @ delta_b) + float(
        np.vdot(solver.gradient_dual, kernel_delta)
    )

    def value(step):
        return solver.value_at(
            start[0] + step * delta_b, start[1] + step * delta_a, start[2] + step * kernel_delta
        )

    values = {step: value(step) for step in (1.0, 2.0, 4.0, 8.0, 16.0)}
    expected = 1.0
    while expected < kernel_newton.LONGEST_STEP and values[2 * expected] < values[expected]:
        expected *= 2
    assert expected > 1.0  # the case this test is about: the full step falls short
    assert solver.line_search(delta_b, delta_a, kernel_delta, slope)
    assert solver.value == pytest.approx(values[expected], rel=1e-12)
    assert_allclose(solver.dual, start[1] + expected * delta_a, rtol=1e-12)
    assert solver.value <= start[3] + 1e-4 * expected * slope  # Armijo at the step taken


def test_newton_cg_verdict_is_confirmed_on_the_exact_hessian(monkeypatch):
    """Newton-CG's loosely solved last step can pass the step test far from the optimum
    (here 1e-7 without the confirmation); where the dense Hessian is affordable the
    verdict is repeated on it, and the fit keeps that Hessian."""
    rng = np.random.default_rng(8)
    X = (
        rng.normal(size=(5000, 20))
        @ np.linalg.cholesky(0.5 ** np.abs(np.subtract.outer(np.arange(20), np.arange(20)))).T
    )
    y = np.argmax(X @ rng.normal(size=(20, 5)) * 0.5 + rng.gumbel(size=(5000, 5)), axis=1)
    settings = {"prior_scale": 1.0, "intercept_prior_scale": None, "autoscale": False}
    exact = plr.MAPLogisticRegression(solver="newton", tol=1e-12, **settings).fit(X, y)
    monkeypatch.setattr(forms, "hessian_form", lambda objective: "free")
    free = plr.MAPLogisticRegression(**settings).fit(X, y)
    assert free.converged_ and not free._result.needs_hessian
    assert np.max(np.abs(free.coef_ - exact.coef_)) < 1e-9
    assert_allclose(free.hessian_, exact.hessian_, rtol=1e-8, atol=1e-10)


def test_map_forms_the_hessian_its_solver_did_not_keep(monkeypatch):
    """After Newton-CG steps the standard errors are those of exact Newton: the Hessian
    is formed at the mode on first use, and a pickled fit carries it (not the data)."""
    import pickle

    X, y = wide_data(n=300, d=40, n_classes=3, seed=4)
    kwargs = {"tol": 1e-10}
    dense = plr.MAPLogisticRegression(solver="newton", **kwargs).fit(X, y)
    monkeypatch.setattr(forms, "hessian_form", lambda objective: "free")
    monkeypatch.setattr(forms, "dense_confirmation_affordable", lambda o: False)
    free = plr.MAPLogisticRegression(**kwargs).fit(X, y)
    assert free._result.needs_hessian  # the solver kept none
    restored = pickle.loads(pickle.dumps(free))
    assert getattr(restored, "_hessian_finder", None) is None
    for model in (free, restored):
        assert_allclose(model.hessian_, dense.hessian_, rtol=1e-6, atol=1e-8)
        assert_allclose(model.summary()["std_error"], dense.summary()["std_error"], rtol=1e-6)
