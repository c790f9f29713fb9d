"""MAP and Laplace fits of data in Dask collections.

References: scikit-learn's LogisticRegression (an independent solver of the same
penalised likelihood), numpy's weighted moments, and the in-memory fit of the
same rows (itself tested against scikit-learn, statsmodels and quadrature
elsewhere), which the blocked fit must reproduce to 1e-8: the sums over blocks
are the in-memory sums in another order. The blocked fit starts from the mode of
a sample of rows, so its path differs from the in-memory one; where the sample is
smaller than the data, both fits run to tol=1e-10, so that each is within 1e-8 of
the optimum.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.linear_model import LogisticRegression

from problogreg import LaplaceLogisticRegression, MAPLogisticRegression
from problogreg.core import block_summary, blocked, blocked_data
from problogreg.core.likelihood import SoftmaxLikelihood
from problogreg.models._mode import mode_finder
from problogreg.models.map import SeparationWarning

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

RTOL = 1e-8


def binary_data(n=6000, d=4, seed=0):
    rng = np.random.default_rng(seed)
    # Columns on different scales and offsets, so that autoscale matters.
    X = rng.normal(size=(n, d)) * np.geomspace(0.1, 20.0, d) + np.arange(d)
    eta = 0.3 + ((X - X.mean(axis=0)) / X.std(axis=0)) @ np.linspace(-1.0, 1.0, d)
    y = (rng.random(n) < special.expit(eta)).astype(int)
    return X, y


def as_dask(X, *columns, rows=1000):
    return (da.from_array(X, chunks=(rows, -1)), *(da.from_array(c, chunks=rows) for c in columns))


@pytest.fixture(scope="module")
def client():
    """A small in-process LocalCluster, closed after the module's tests."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def assert_same_fit(blocked_model, memory_model):
    np.testing.assert_allclose(blocked_model.coef_, memory_model.coef_, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(
        blocked_model.intercept_, memory_model.intercept_, rtol=RTOL, atol=1e-12
    )
    np.testing.assert_allclose(blocked_model.hessian_, memory_model.hessian_, rtol=RTOL)
    np.testing.assert_allclose(blocked_model.log_likelihood_, memory_model.log_likelihood_, RTOL)
    assert blocked_model.converged_


def count_passes(monkeypatch) -> list:
    """Record whether each pass over the blocks computed the Hessian."""
    passes = []
    original = blocked.BlockedLikelihood._pass

    def counting(self, theta, want_hessian):
        passes.append(want_hessian)
        return original(self, theta, want_hessian)

    monkeypatch.setattr(blocked.BlockedLikelihood, "_pass", counting)
    return passes


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"solver": "newton", "prior_scale": None, "intercept_prior_scale": None},
        {"solver": "lbfgs"},
    ],
)
def test_map_equals_in_memory_fit(client, params):
    X, y = binary_data()
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    memory = MAPLogisticRegression(**params).fit(X, y, sample_weight=weights)
    fitted = MAPLogisticRegression(**params).fit(*as_dask(X, y, weights))
    if params.get("solver") == "lbfgs":
        np.testing.assert_allclose(fitted.coef_, memory.coef_, rtol=1e-6)
    else:
        assert_same_fit(fitted, memory)
    np.testing.assert_allclose(fitted.prior_scale_, memory.prior_scale_, rtol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_block_terms_equal_in_memory_kernels(monkeypatch, n_classes, dtype):
    """One read of a block in slabs (here of 1024 rows, the last one short) gives the
    loss, gradient, Hessian and largest log-likelihood of the whole block."""
    monkeypatch.setattr(blocked, "SLAB_BYTES", 1024 * 8 * 5)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3500, 5)).astype(dtype)
    labels = np.array(["a", "b", "c"])[rng.integers(0, n_classes, 3500)]
    classes = np.unique(labels)
    weights = rng.uniform(0.0, 2.0, 3500)
    for reference in {True, n_classes == 2}:
        whole = SoftmaxLikelihood(
            X.astype(np.float64),
            np.searchsorted(classes, labels),
            weights,
            n_classes,
            reference,
        )
        theta = rng.normal(size=whole.n_params)
        terms = blocked.block_terms(X, labels, weights, theta, classes, reference, True)
        loss, gradient = whole.loss_gradient(theta)
        np.testing.assert_allclose(terms.loss, loss, rtol=1e-10)
        np.testing.assert_allclose(terms.gradient, gradient, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(terms.hessian, whole.hessian(theta), rtol=1e-10, atol=1e-10)
        assert terms.largest_log_likelihood == whole.pointwise_log_likelihood(theta).max()
        unit = blocked.block_terms(X, labels, None, theta, classes, reference, False)
        assert unit.hessian is None
        np.testing.assert_allclose(
            unit.loss, -whole.pointwise_log_likelihood(theta).sum(), rtol=1e-10
        )


def test_unaligned_blocks_are_read_through_an_aligned_copy(monkeypatch):
    """A block Dask received from another worker can sit unaligned in its bytes; its
    slabs are aligned copies, and its terms equal those of the aligned block."""
    monkeypatch.setattr(blocked, "SLAB_BYTES", 1024 * 8 * 4)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(2500, 4))
    raw = bytearray(X.nbytes + 4)
    unaligned = np.frombuffer(raw, dtype=np.float64, offset=4, count=X.size).reshape(X.shape)
    unaligned[...] = X
    assert not unaligned.flags.aligned
    slabs = list(blocked.float64_slabs(unaligned, 1024))
    assert all(slab.flags.aligned and slab.flags.c_contiguous for _, slab in slabs)
    labels = rng.integers(0, 2, len(X))
    classes, theta = np.array([0, 1]), rng.normal(size=5)
    expected = blocked.block_terms(X, labels, None, theta, classes, True, True)
    terms = blocked.block_terms(unaligned, labels, None, theta, classes, True, True)
    assert terms.loss == expected.loss
    np.testing.assert_array_equal(terms.gradient, expected.gradient)
    np.testing.assert_array_equal(terms.hessian, expected.hessian)


def test_warm_start_from_a_sample_takes_few_passes(client, monkeypatch):
    """A tenth of the rows drawn in the validation pass (stratified by block, weighted up)
    starts exact Newton close enough to finish in a few passes, at the in-memory optimum."""
    monkeypatch.setattr(blocked_data, "SAMPLE_MIN_ROWS", 1000)
    X, y = binary_data(n=20_000, d=3)
    weights = np.random.default_rng(6).uniform(0.5, 2.0, len(y))
    passes = count_passes(monkeypatch)
    fitted = MAPLogisticRegression(tol=1e-10).fit(*as_dask(X, y, weights, rows=3000))
    memory = MAPLogisticRegression(tol=1e-10).fit(X, y, sample_weight=weights)
    assert_same_fit(fitted, memory)
    # Passes for the gradient at the start and after the first step (the first two steps
    # take the sample's Hessian), then one per Newton step, each with the Hessian ahead:
    # at most two exact steps to tol=1e-10 from a sample of 2000 rows.
    steps = blocked.SAMPLE_HESSIAN_STEPS
    assert not any(passes[:steps]) and all(passes[steps:]), passes
    assert len(passes) == fitted.n_iter_ + 1 <= steps + 3, passes


@pytest.mark.parametrize("n_classes", [2, 3])
def test_first_steps_take_the_samples_hessian(client, monkeypatch, n_classes):
    """From the sample's mode the first steps take the Hessian of the sampled rows,
    weighted up to the whole (formed on the client, so their passes compute only the
    loss and the gradient); it estimates the full Hessian to about sqrt(p / rows drawn).
    The fit still ends at the in-memory optimum, with the exact Hessian there."""
    monkeypatch.setattr(blocked_data, "SAMPLE_MIN_ROWS", 2000)
    X, y = binary_data(n=40_000, d=3)
    if n_classes == 3:
        y = y + (X[:, 0] > X[:, 0].mean())
    weights = np.random.default_rng(8).uniform(0.5, 2.0, len(y))
    blocks = as_dask(X, y, weights, rows=5000)
    memory = MAPLogisticRegression(tol=1e-10).fit(X, y, sample_weight=weights)
    model = MAPLogisticRegression(tol=1e-10)
    likelihood = mode_finder(model, *blocks).objective.likelihood
    sample = likelihood.hessian_sample(blocked.SAMPLE_HESSIAN_STEPS)
    assert sample is likelihood.sample and len(sample.codes) == 4000
    theta = np.random.default_rng(9).normal(scale=0.3, size=likelihood.n_params)
    rows = np.flatnonzero(np.isin(X[:, 0], sample.X[:, 0]))
    factor = len(y) / len(rows)  # every block holds 5000 rows, of which 500 were drawn
    by_hand = SoftmaxLikelihood(
        X[rows], sample.codes, weights[rows] * factor, likelihood.n_classes, likelihood.reference
    ).hessian(theta)
    estimate = likelihood.hessian(theta, rows=sample)
    np.testing.assert_allclose(estimate, by_hand, rtol=1e-12)
    codes = np.searchsorted(likelihood.classes, y)
    exact = SoftmaxLikelihood(
        X, codes, weights, likelihood.n_classes, likelihood.reference
    ).hessian(theta)
    error = np.abs(estimate - exact).max() / np.abs(exact).max()
    assert 1e-3 < error < 5 * np.sqrt(likelihood.n_params / len(rows)), error
    with pytest.raises(ValueError, match="validation pass's sample"):
        likelihood.hessian(theta, rows=blocked.RowSample(X[:10], y[:10], weights[:10], None))

    passes = count_passes(monkeypatch)
    fitted = model.fit(*blocks)
    assert_same_fit(fitted, memory)
    steps = blocked.SAMPLE_HESSIAN_STEPS
    assert not any(passes[:steps]) and all(passes[steps:]), passes
    assert len(passes) == fitted.n_iter_ + 1, passes


def test_a_sample_of_every_row_gives_the_exact_first_step(client, monkeypatch):
    """Where the sample holds every row its Hessian is the exact one: no estimate, and the
    first pass computes the Hessian ahead as every other does."""
    X, y = binary_data(n=3000, d=3)
    blocks = as_dask(X, y, rows=1000)
    likelihood = mode_finder(MAPLogisticRegression(), *blocks, None).objective.likelihood
    assert likelihood.hessian_sample(blocked.SAMPLE_HESSIAN_STEPS) is None
    passes = count_passes(monkeypatch)
    fitted = MAPLogisticRegression().fit(*blocks)
    assert all(passes) and len(passes) == fitted.n_iter_ + 1, passes


def test_sample_is_stratified_by_block(client, monkeypatch):
    for name, value in (("SAMPLE_MIN_ROWS", 500), ("SAMPLE_ROWS", 1000)):
        monkeypatch.setattr(blocked_data, name, value)
    X, y = binary_data(n=5000, d=2)
    weights = np.random.default_rng(7).uniform(0.5, 2.0, len(y))
    X_blocks, y_blocks, w_blocks = as_dask(X, y, weights, rows=1200)
    data = blocked_data.validate_blocked_fit_data(
        MAPLogisticRegression(), X_blocks, y_blocks, w_blocks
    )
    sample = data.sample
    # A tenth of each block of 1200 rows (120), and 100 of the last, of 200 (at least
    # 500 / 5 blocks).
    assert len(sample.codes) == 4 * 120 + 100
    np.testing.assert_allclose(np.sum(sample.stratum_factor), len(y))
    rows = np.flatnonzero(np.isin(X[:, 0], sample.X[:, 0]))
    np.testing.assert_array_equal(X[rows], sample.X)
    np.testing.assert_array_equal(y[rows], data.classes[sample.codes])
    np.testing.assert_array_equal(weights[rows], sample.sample_weight)


def test_sample_rows_per_column(client, monkeypatch):
    """The sample is capped at SAMPLE_ROWS_PER_COLUMN rows per column of [1, X] (the
    sample's Hessian is as accurate at any width), spread evenly over the blocks."""
    monkeypatch.setattr(blocked_data, "SAMPLE_MIN_ROWS", 100)
    monkeypatch.setattr(blocked_data, "SAMPLE_ROWS_PER_COLUMN", 60)
    X, y = binary_data(n=6000, d=4)
    data = blocked_data.validate_blocked_fit_data(MAPLogisticRegression(), *as_dask(X, y))
    # 60 x 5 columns = 300 rows, 50 from each of the six blocks of 1000 (a tenth is 100).
    assert len(data.sample.codes) == 300
    np.testing.assert_allclose(data.sample.stratum_factor, 20.0)


def test_map_matches_scikit_learn(client):
    X, y = binary_data()
    fitted = MAPLogisticRegression(
        prior_scale=1.0, intercept_prior_scale=None, autoscale=False, solver="newton"
    ).fit(*as_dask(X, y))
    reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(fitted.coef_, reference.coef_, rtol=1e-6)
    np.testing.assert_allclose(fitted.intercept_, reference.intercept_, rtol=1e-6)


def test_autoscale_uses_weighted_column_sd(client, monkeypatch):
    """Moments merged across slabs of 1024 rows and blocks of 2500."""
    monkeypatch.setattr(block_summary, "CHECK_SLAB_BYTES", 1024 * 8 * 4)
    X, y = binary_data()
    weights = np.random.default_rng(2).uniform(0.0, 3.0, len(y))
    fitted = MAPLogisticRegression(prior_scale=2.0).fit(*as_dask(X, y, weights, rows=2500))
    mean = np.average(X, axis=0, weights=weights)
    sd = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=weights))
    np.testing.assert_allclose(fitted.prior_scale_, 2.0 / sd, rtol=1e-12)


@pytest.mark.parametrize("multiclass", ["symmetric", "reference"])
def test_multiclass_equals_in_memory_fit(client, multiclass):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 3))
    proba = special.softmax(X @ rng.normal(size=(3, 4)), axis=1)
    y = (proba.cumsum(axis=1) > rng.random(3000)[:, None]).argmax(axis=1)
    memory = MAPLogisticRegression(multiclass=multiclass).fit(X, y)
    fitted = MAPLogisticRegression(multiclass=multiclass).fit(*as_dask(X, y, rows=800))
    np.testing.assert_allclose(fitted.coef_, memory.coef_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(fitted.hessian_, memory.hessian_, rtol=1e-7, atol=1e-9)


def test_dataframe_with_string_labels_and_lazy_predictions(client):
    X, y = binary_data(n=3000)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    labels = pd.Series(np.where(y == 1, "yes", "no"), name="label")
    dask_frame = dd.from_pandas(frame.assign(label=labels), npartitions=4)
    fitted = MAPLogisticRegression().fit(dask_frame.drop(columns="label"), dask_frame["label"])
    memory = MAPLogisticRegression().fit(frame, labels)
    assert_same_fit(fitted, memory)
    assert list(fitted.feature_names_in_) == list(frame.columns)
    proba = fitted.predict_proba(dask_frame.drop(columns="label"))
    labels_out = fitted.predict(dask_frame.drop(columns="label"))
    assert isinstance(proba, da.Array) and isinstance(labels_out, da.Array)
    np.testing.assert_allclose(proba.compute(), memory.predict_proba(frame), rtol=1e-8)
    assert (labels_out.compute() == memory.predict(frame)).all()


def test_empty_partitions(client):
    """A filtered DataFrame whose first partition is empty: fit, and lazy predictions."""
    X, y = binary_data(n=4000)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])]).assign(label=y)
    kept = dd.from_pandas(frame, npartitions=4).map_partitions(lambda p: p[p.index >= 1000])
    features = kept.drop(columns="label")
    fitted = LaplaceLogisticRegression().fit(features, kept["label"])
    memory = LaplaceLogisticRegression().fit(frame.iloc[1000:, :-1], y[1000:])
    assert_same_fit(fitted, memory)
    np.testing.assert_allclose(
        fitted.predict_proba(features).compute(), memory.predict_proba(frame.iloc[1000:, :-1])
    )
    lower, _ = fitted.predict_interval(features)
    assert lower.compute().shape == (3000, 2)


def test_laplace_posterior_evidence_and_predictions(client):
    X, y = binary_data()
    memory = LaplaceLogisticRegression().fit(X, y)
    X_blocks, y_blocks = as_dask(X, y)
    fitted = LaplaceLogisticRegression().fit(X_blocks, y_blocks)
    np.testing.assert_allclose(fitted.posterior_mean_, memory.posterior_mean_, rtol=RTOL)
    np.testing.assert_allclose(fitted.posterior_cov_, memory.posterior_cov_, rtol=1e-7)
    np.testing.assert_allclose(fitted.log_evidence_, memory.log_evidence_, rtol=RTOL)
    pd.testing.assert_frame_equal(fitted.summary(), memory.summary(), rtol=1e-7)
    proba = fitted.predict_proba(X_blocks[:2500])
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), memory.predict_proba(X[:2500]), rtol=1e-8)
    for method in ("map", "mc"):
        np.testing.assert_allclose(
            fitted.predict_proba(X_blocks[:500], method=method, draws=200).compute(),
            memory.predict_proba(X[:500], method=method, draws=200),
            rtol=1e-8,
        )
    lower, upper = fitted.predict_interval(X_blocks, prob=0.9)
    assert isinstance(lower, da.Array) and isinstance(upper, da.Array)
    for lazy, expected in zip(
        dask.compute(lower, upper), memory.predict_interval(X, prob=0.9), strict=True
    ):
        np.testing.assert_allclose(lazy, expected, rtol=1e-7)
    with pytest.raises(ValueError, match="fitted on Dask data"):
        fitted.loo(X, y)
    with pytest.raises(ValueError, match="fitted on Dask data"):
        fitted.check_approximation(X_blocks, y_blocks)


def test_multiclass_intervals_on_dask_blocks(client):
    """Monte Carlo intervals: every block uses the same seeded draws as the in-memory call."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(1500, 2))
    y = rng.integers(0, 3, 1500)
    fitted = LaplaceLogisticRegression().fit(*as_dask(X, y, rows=500))
    memory = LaplaceLogisticRegression().fit(X, y)
    intervals = dask.compute(*fitted.predict_interval(as_dask(X)[0], draws=300))
    for lazy, expected in zip(intervals, memory.predict_interval(X, draws=300), strict=True):
        np.testing.assert_allclose(lazy, expected, rtol=1e-6, atol=1e-9)


def test_runs_on_the_active_client(client):
    X, y = binary_data(n=2000)
    before = sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())
    MAPLogisticRegression().fit(*as_dask(X, y, rows=500))
    after = sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())
    assert after - before >= 4


def test_float32_blocks(client):
    X, y = binary_data(n=3000)
    X32 = X.astype(np.float32)
    assert_same_fit(
        MAPLogisticRegression().fit(*as_dask(X32, y)), MAPLogisticRegression().fit(X32, y)
    )


def test_bad_input_is_reported():
    X, y = binary_data(n=2000)
    bad = X.copy()
    bad[1500, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in columns \['x2'\]"):
        MAPLogisticRegression().fit(*as_dask(bad, y))
    with pytest.raises(ValueError, match="only one class"):
        MAPLogisticRegression().fit(*as_dask(X, np.zeros_like(y)))
    with pytest.raises(ValueError, match="blocks of rows"):
        MAPLogisticRegression().fit(da.from_array(X, chunks=(500, -1)), dd.from_array(y, 3))
    with pytest.raises(ValueError, match="jeffreys"):
        MAPLogisticRegression(prior="jeffreys").fit(*as_dask(X, y))
    with pytest.raises(ValueError, match="negative"):
        MAPLogisticRegression().fit(*as_dask(X, y, -np.ones(len(y))))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (np.nan, "NaN or infinite values"),
        (-np.inf, "NaN or infinite values"),
        (-1e200, r"values larger than 1e\+150 in magnitude"),
        (np.nextafter(1e150, np.inf), r"values larger than 1e\+150 in magnitude"),
    ],
)
def test_a_bad_value_in_one_block_is_named(value, problem):
    """One bad entry, in the middle of the third block, in a row of zero weight (which
    the weighted sums would not see), is reported with its column."""
    X, y = binary_data(n=2000)
    weights = np.ones(len(y))
    X[1250, 3], weights[1250] = value, 0.0
    with pytest.raises(ValueError, match=rf"X has {problem}.* in columns \['x3'\]\. "):
        MAPLogisticRegression().fit(*as_dask(X, y, weights, rows=500))


@pytest.mark.parametrize("layout", ["C", "F", "float32"])
def test_column_summary_against_numpy(monkeypatch, layout):
    """Flags and weighted moments of a block read in slabs of 1024 rows (the second of
    weight zero, the last short), against numpy over the whole block: a NaN (column 0),
    an inf (1), values beyond MAX_ABS_FEATURE (2, 5) are flagged, values of magnitude
    MAX_ABS_FEATURE (3, 4) are not (but overflow float32); columns 6 and 7 are clean."""
    monkeypatch.setattr(block_summary, "CHECK_SLAB_BYTES", 1024 * 8 * 8)
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 8))
    X[:, 6:] = X[:, 6:] * [1e3, 1e-3] + [5e3, 0.0]
    weights = rng.uniform(0.0, 2.0, len(X))
    weights[1024:2048] = 0.0
    limit = block_summary.MAX_ABS_FEATURE
    beyond = np.nextafter(limit, np.inf)
    X[2000, 0], X[20, 1], X[1100, 2] = np.nan, np.inf, -2 * limit
    X[10, 3], X[1500, 4], X[2999, 5] = limit, -limit, beyond
    if layout == "float32":
        with np.errstate(over="ignore"):
            block = X.astype(np.float32)
    else:
        block = np.asarray(X, order=layout)
    values = block.astype(np.float64)
    non_finite, too_large, (total, mean, m2) = block_summary.column_summary(block, weights)
    expected_non_finite = ~np.all(np.isfinite(values), axis=0)
    np.testing.assert_array_equal(non_finite, expected_non_finite)
    np.testing.assert_array_equal(
        too_large, ~expected_non_finite & np.any(np.abs(values) > limit, axis=0)
    )
    assert expected_non_finite[:2].all() and too_large[[2, 5]].all() == (layout != "float32")
    clean = values[:, 6:]
    expected_mean = np.average(clean, axis=0, weights=weights)
    np.testing.assert_allclose(total, weights.sum(), rtol=1e-14)
    np.testing.assert_allclose(mean[6:], expected_mean, rtol=1e-12)
    np.testing.assert_allclose(m2[6:], weights @ (clean - expected_mean) ** 2, rtol=1e-12)
    non_finite, too_large, _ = block_summary.column_summary(block[:, 6:], weights)
    assert not non_finite.any() and not too_large.any()


@pytest.mark.parametrize(
    "labels",
    [
        np.array([1, -128, 127, 1, -128, 127, 1, 1], dtype=np.int8),
        np.array([True, True, False, True, False, True, True, True]),
        np.array([0, 10**12, 0, 10**12, 0, 0, 0, 10**12], dtype=np.uint64),
        np.array(["b", "a", "b", "c", "a", "a", "b", "b"], dtype=object),
        np.array([2.0, 0.5, 2.0, 2.0, 0.5, 0.5, 2.0, 2.0]),
    ],
)
def test_class_weights_against_numpy(labels):
    """Classes present (also one whose every row has zero weight) and their weights."""
    weights = np.array([0.5, 0.0, 2.0, 1.5, 0.0, 3.0, 1.0, 0.25])
    classes, class_weight = block_summary.class_weights(labels, weights)
    expected = np.unique(labels)
    np.testing.assert_array_equal(classes, expected)
    assert classes.dtype == expected.dtype
    np.testing.assert_allclose(
        class_weight, [weights[labels == c].sum() for c in expected], rtol=1e-15
    )


def test_flat_prior_on_separable_data_names_the_sample_checked():
    rng = np.random.default_rng(4)
    x = rng.normal(size=4000)
    y = (x > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        with pytest.warns(SeparationWarning, match="random sample of 4000 of the 4000 rows"):
            MAPLogisticRegression(prior_scale=None, intercept_prior_scale=None).fit(
                *as_dask(x[:, None], y)
            )
