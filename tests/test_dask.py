"""MAP and Laplace fits of data in Dask collections.

References: scikit-learn's LogisticRegression (an independent solver of the same
penalised likelihood), numpy's weighted moments, and the in-memory fit of the
same rows (itself tested against scikit-learn, statsmodels and quadrature
elsewhere), which the blocked fit must reproduce to 1e-8: the sums over blocks
are the in-memory sums in another order.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.linear_model import LogisticRegression

from problogreg import LaplaceLogisticRegression, MAPLogisticRegression
from problogreg.core import blocked
from problogreg.models.map import SeparationWarning

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
    assert blocked_model.converged_ and blocked_model.n_iter_ == memory_model.n_iter_


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


def test_subsampled_start_used_and_exact_at_the_end(client):
    """With 64 rows per parameter in an eighth, the first steps use a subsample's Hessian."""
    X, y = binary_data(n=20_000, d=3)
    passes = []
    original = blocked.BlockedLikelihood._pass

    def counting(self, theta, want_hessian, rows):
        passes.append(rows is not None)
        return original(self, theta, want_hessian, rows)

    blocked.BlockedLikelihood._pass = counting
    try:
        fitted = MAPLogisticRegression().fit(*as_dask(X, y, rows=3000))
    finally:
        blocked.BlockedLikelihood._pass = original
    assert_same_fit(fitted, MAPLogisticRegression().fit(X, y))
    assert passes[0] and not passes[-1]
    # One pass per Newton iteration, plus the start and the switch to exact Hessians.
    assert len(passes) <= fitted.n_iter_ + 2


def test_map_matches_scikit_learn(client):
    X, y = binary_data()
    fitted = MAPLogisticRegression(
        prior_scale=1.0, intercept_prior_scale=None, autoscale=False, solver="newton"
    ).fit(*as_dask(X, y))
    reference = LogisticRegression(C=1.0, tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(fitted.coef_, reference.coef_, rtol=1e-6)
    np.testing.assert_allclose(fitted.intercept_, reference.intercept_, rtol=1e-6)


def test_autoscale_uses_weighted_column_sd(client):
    X, y = binary_data()
    weights = np.random.default_rng(2).uniform(0.0, 3.0, len(y))
    fitted = MAPLogisticRegression(prior_scale=2.0).fit(*as_dask(X, y, weights, rows=700))
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
