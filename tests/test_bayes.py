"""Tests of PyMCLogisticRegression (NUTS) against independent references.

References: statsmodels' MLE and inverse-Hessian covariance (flat prior, large
n: the posterior is close to that Gaussian), exact posterior moments by 2-D
quadrature on a grid (small skewed problem), and closed-form log densities
written here with scipy. Fitted models are shared through module-scoped
fixtures; the compiled log-densities are cached on disk across tests.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.utils.estimator_checks import parametrize_with_checks

from problogreg import LaplaceLogisticRegression, MAPLogisticRegression
from problogreg.core.likelihood import SoftmaxLikelihood
from problogreg.core.objective import PosteriorObjective
from problogreg.core.priors import ResolvedPrior
from problogreg.models.nuts import PyMCLogisticRegression, SamplingWarning

#: From the Laplace start only the step size is tuned; 300 iterations gave the
#: same ESS and no divergences as 1000 on problems with n = 10, 300 and 5000.
TUNE = 300

#: Posterior summaries agree when they differ by less than this many Monte Carlo
#: standard errors (a 4-sigma event has probability ~6e-5 per comparison).
MCSE_MULTIPLE = 4.0


def _fit_quietly(estimator, X, y, **kwargs):
    """Fit, recording any SamplingWarning on the estimator for later tests."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplingWarning)
        estimator.fit(X, y, **kwargs)
    estimator.test_sampling_warnings = [w for w in caught if w.category is SamplingWarning]
    return estimator


def _summary_arrays(estimator, var_name):
    """Posterior mean, sd, mcse_mean and mcse_sd of one variable, flattened."""
    table = estimator.summary(round_to="none")
    rows = [name for name in table.index if name.split("[")[0] == var_name]
    return {
        key: table.loc[rows, key].to_numpy(dtype=float)
        for key in ("mean", "sd", "mcse_mean", "mcse_sd")
    }


def _toy_binary(n, seed, coef=(1.0, -0.5), intercept=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(coef)))
    y = (rng.random(n) < expit(intercept + X @ np.asarray(coef))).astype(int)
    return X, y


def _toy_multiclass(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    logits = X @ np.array([[0.0, 1.0, -1.0], [0.0, -0.5, 1.0]]) + np.array([0.0, 0.3, -0.2])
    u = rng.random(n)[:, None]
    y = (u > np.cumsum(softmax(logits, axis=1), axis=1)).sum(axis=1)
    return X, y


# -- large n, flat prior: the posterior is close to the MLE's Gaussian ----------


@pytest.fixture(scope="module")
def gaussian_data():
    return _toy_binary(4000, seed=11)


@pytest.fixture(scope="module")
def gaussian_problem(gaussian_data):
    X, y = gaussian_data
    model = PyMCLogisticRegression(
        prior_scale=None, intercept_prior_scale=None, tune=TUNE, random_state=0, progressbar=False
    )
    return X, y, _fit_quietly(model, X, y)


@pytest.mark.slow
def test_large_n_posterior_matches_mle_gaussian(gaussian_problem):
    sm = pytest.importorskip("statsmodels.api")
    X, y, model = gaussian_problem
    reference = sm.Logit(y, sm.add_constant(X)).fit(disp=0)
    for name, index in (("intercept", [0]), ("coef", [1, 2])):
        nuts = _summary_arrays(model, name)
        mle_mean = reference.params[index]
        mle_sd = np.sqrt(np.diag(reference.cov_params())[index])
        # The posterior is only approximately Gaussian: allow 5 % of an sd of
        # skewness bias on top of the Monte Carlo error (here ~2 % of an sd).
        assert np.all(
            np.abs(nuts["mean"] - mle_mean) < MCSE_MULTIPLE * nuts["mcse_mean"] + 0.05 * mle_sd
        )
        assert np.all(np.abs(nuts["sd"] - mle_sd) < MCSE_MULTIPLE * nuts["mcse_sd"] + 0.05 * mle_sd)


@pytest.mark.slow
def test_good_run_converges_without_warning(gaussian_problem):
    _, _, model = gaussian_problem
    assert model.test_sampling_warnings == []
    assert model.diagnostics_["max_r_hat"] < 1.01
    assert model.diagnostics_["min_ess_bulk"] > 400
    assert model.diagnostics_["n_divergent"] == 0


@pytest.mark.slow
def test_datatree_layout_binary(gaussian_problem):
    X, y, model = gaussian_problem
    idata = model.idata_
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(idata.children)
    assert set(idata.posterior.data_vars) == {"coef", "intercept"}
    assert idata.posterior["coef"].dims == ("chain", "draw", "feature")
    assert idata.posterior["intercept"].dims == ("chain", "draw")
    assert list(idata.posterior["feature"].values) == ["x0", "x1"]
    assert idata.posterior.sizes["chain"] == 4 and idata.posterior.sizes["draw"] == 1000
    np.testing.assert_array_equal(idata.observed_data["y"].values, y)
    # Pointwise log-likelihood recomputed independently for a few draws.
    log_lik = idata.log_likelihood["y"]
    assert log_lik.dims == ("chain", "draw", "obs_id")
    for chain, draw in [(0, 0), (3, 999)]:
        eta = (
            idata.posterior["intercept"].values[chain, draw]
            + X @ idata.posterior["coef"].values[chain, draw]
        )
        expected = np.where(y == 1, log_expit(eta), log_expit(-eta))
        np.testing.assert_allclose(log_lik.values[chain, draw], expected, rtol=1e-10)


@pytest.mark.slow
def test_summary_reports_convergence(gaussian_problem):
    table = gaussian_problem[2].summary()
    assert list(table.index) == ["coef[x0]", "coef[x1]", "intercept"]
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(table.columns)


# -- small skewed problem: exact posterior by quadrature ------------------------

SKEWED_X = np.array([-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5])
SKEWED_Y = np.array([0, 0, 0, 1, 0, 1, 1, 1, 1, 1])


def _exact_moments_by_quadrature():
    """Posterior mean and sd of (intercept, slope) on a 701 x 851 grid.

    Prior Normal(0, 10) on the intercept and Normal(0, 2.5) on the slope; the
    grid holds all but ~1e-7 of the posterior mass.
    """
    b, w = np.meshgrid(np.linspace(-6, 8, 701), np.linspace(-3, 14, 851), indexing="ij")
    eta = b[..., None] + w[..., None] * SKEWED_X
    log_post = np.where(SKEWED_Y == 1, log_expit(eta), log_expit(-eta)).sum(axis=-1)
    log_post += stats.norm.logpdf(b, 0, 10) + stats.norm.logpdf(w, 0, 2.5)
    weight = np.exp(log_post - log_post.max())
    weight /= weight.sum()
    mean = np.array([(weight * b).sum(), (weight * w).sum()])
    sd = np.sqrt([(weight * (b - mean[0]) ** 2).sum(), (weight * (w - mean[1]) ** 2).sum()])
    return mean, sd


@pytest.fixture(scope="module", params=["nutpie", "pymc"])
def skewed_fit(request):
    """Both engines: each must reproduce the exact posterior (their only shared code is
    the model and the whitening)."""
    model = PyMCLogisticRegression(
        autoscale=False, tune=TUNE, sampler=request.param, random_state=3, progressbar=False
    )
    return _fit_quietly(model, SKEWED_X[:, None], SKEWED_Y)


def test_skewed_posterior_matches_quadrature_where_laplace_does_not(skewed_fit):
    exact_mean, exact_sd = _exact_moments_by_quadrature()
    nuts = {
        key: np.concatenate(
            [
                _summary_arrays(skewed_fit, "intercept")[key],
                _summary_arrays(skewed_fit, "coef")[key],
            ]
        )
        for key in ("mean", "sd", "mcse_mean", "mcse_sd")
    }
    assert np.all(np.abs(nuts["mean"] - exact_mean) < MCSE_MULTIPLE * nuts["mcse_mean"])
    assert np.all(np.abs(nuts["sd"] - exact_sd) < MCSE_MULTIPLE * nuts["mcse_sd"])
    # The Laplace approximation (mean = MAP) misses the slope's mean by more
    # than 5 times the tolerance NUTS meets (gap ~0.6 posterior sd).
    laplace = MAPLogisticRegression(autoscale=False).fit(SKEWED_X[:, None], SKEWED_Y)
    laplace_slope = laplace.coef_[0, 0]
    assert abs(laplace_slope - exact_mean[1]) > 5 * MCSE_MULTIPLE * nuts["mcse_mean"][1]


# -- predictions on new data ------------------------------------------------------


@pytest.fixture(scope="module")
def small_fit():
    X, y = _toy_binary(80, seed=5)
    model = PyMCLogisticRegression(draws=300, tune=300, chains=2, random_state=1, progressbar=False)
    return X, y, _fit_quietly(model, X, y)


def test_predict_proba_is_posterior_mean_on_new_data(small_fit):
    _, _, model = small_fit
    X_new = np.random.default_rng(9).normal(size=(7, 2))
    coef = model.idata_.posterior["coef"].values.reshape(-1, 2)
    intercept = model.idata_.posterior["intercept"].values.reshape(-1)
    expected = expit(intercept[:, None] + coef @ X_new.T).mean(axis=0)
    proba = model.predict_proba(X_new)
    assert proba.shape == (7, 2)
    np.testing.assert_allclose(proba[:, 1], expected, rtol=1e-10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X_new), (expected > 0.5).astype(int))


def test_predict_interval_brackets_the_mean(small_fit):
    _, _, model = small_fit
    X_new = np.random.default_rng(10).normal(size=(13, 2))
    lower, upper = model.predict_interval(X_new, prob=0.9)
    coef = model.idata_.posterior["coef"].values.reshape(-1, 2)
    intercept = model.idata_.posterior["intercept"].values.reshape(-1)
    p1 = expit(intercept[:, None] + coef @ X_new.T)
    np.testing.assert_allclose(upper[:, 1], np.quantile(p1, 0.95, axis=0), rtol=1e-10)
    np.testing.assert_allclose(lower[:, 1], np.quantile(p1, 0.05, axis=0), rtol=1e-10)
    mean = model.predict_proba(X_new)
    assert np.all((lower <= mean) & (mean <= upper))
    with pytest.raises(ValueError, match="prob"):
        model.predict_interval(X_new, prob=1.5)


def test_sample_posterior_predictive_frequencies(small_fit):
    _, _, model = small_fit
    X_new = np.array([[-2.0, 0.0], [0.0, 0.0], [2.0, 1.0]])
    pp = model.sample_posterior_predictive(X_new, random_state=0)
    draws = pp.posterior_predictive["y"]
    assert draws.dims == ("chain", "draw", "obs_id") and draws.shape == (2, 300, 3)
    frequency = (draws.values == 1).reshape(-1, 3).mean(axis=0)
    expected = model.predict_proba(X_new)[:, 1]
    # Binomial standard error with 600 draws is at most 0.02.
    assert np.all(
        np.abs(frequency - expected) < 4 * np.sqrt(expected * (1 - expected) / 600) + 1e-9
    )
    again = model.sample_posterior_predictive(X_new, random_state=0)
    np.testing.assert_array_equal(again.posterior_predictive["y"].values, draws.values)


def test_fitted_model_pickles(small_fit):
    X, _, model = small_fit
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    assert restored.model_.named_vars.keys() == model.model_.named_vars.keys()


# -- multiclass: both parametrisations ------------------------------------------


@pytest.fixture(scope="module")
def multiclass_data():
    return _toy_multiclass(1500, seed=4)


@pytest.fixture(scope="module")
def reference_fit(multiclass_data):
    X, y = multiclass_data
    model = PyMCLogisticRegression(
        prior_scale=None,
        intercept_prior_scale=None,
        multiclass="reference",
        draws=500,
        tune=TUNE,
        random_state=2,
        progressbar=False,
    )
    return _fit_quietly(model, X, y)


@pytest.fixture(scope="module")
def symmetric_fit(multiclass_data):
    X, y = multiclass_data
    model = PyMCLogisticRegression(
        intercept_prior_scale=None,
        multiclass="symmetric",
        draws=500,
        tune=TUNE,
        random_state=2,
        progressbar=False,
    )
    return _fit_quietly(model, X, y)


@pytest.mark.slow
def test_reference_parametrisation_matches_mnlogit(multiclass_data, reference_fit):
    sm = pytest.importorskip("statsmodels.api")
    X, y = multiclass_data
    reference = sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton")
    posterior = reference_fit.idata_.posterior
    assert posterior["coef"].dims == ("chain", "draw", "class", "feature")
    # The reference class is fixed at zero, in every draw.
    assert np.all(posterior["coef"].sel({"class": 0}).values == 0)
    assert np.all(posterior["intercept"].sel({"class": 0}).values == 0)
    table = reference_fit.summary(round_to="none")
    # statsmodels: rows (const, x0, x1), columns (class 1, class 2).
    mle, mle_sd = np.asarray(reference.params), np.asarray(reference.bse)
    for k in (1, 2):
        labels = [f"intercept[{k}]", f"coef[{k}, x0]", f"coef[{k}, x1]"]
        for row, label in enumerate(labels):
            entry, sd = table.loc[label], mle_sd[row, k - 1]
            tolerance = MCSE_MULTIPLE * entry["mcse_mean"] + 0.1 * sd
            assert abs(entry["mean"] - mle[row, k - 1]) < tolerance, label
            assert abs(entry["sd"] - sd) < MCSE_MULTIPLE * entry["mcse_sd"] + 0.1 * sd, label


@pytest.mark.slow
def test_symmetric_parametrisation_matches_laplace(multiclass_data, symmetric_fit):
    X, y = multiclass_data
    posterior = symmetric_fit.idata_.posterior
    # Flat intercept prior: the intercepts are sum-to-zero contrasts, in every draw.
    np.testing.assert_allclose(posterior["intercept"].values.sum(axis=-1), 0.0, atol=1e-10)
    laplace = MAPLogisticRegression(intercept_prior_scale=None, multiclass="symmetric").fit(X, y)
    gaussian = laplace.summary()
    table = symmetric_fit.summary(round_to="none")
    for k in range(3):
        for j in range(2):
            entry = table.loc[f"coef[{k}, x{j}]"]
            expected = gaussian.loc[(k, f"x{j}")]
            sd = expected["std_error"]
            assert (
                abs(entry["mean"] - expected["estimate"])
                < MCSE_MULTIPLE * entry["mcse_mean"] + 0.1 * sd
            )
            assert abs(entry["sd"] - sd) < MCSE_MULTIPLE * entry["mcse_sd"] + 0.1 * sd
    assert symmetric_fit.test_sampling_warnings == []


@pytest.mark.slow
def test_multiclass_predictions_agree_between_parametrisations(
    multiclass_data, reference_fit, symmetric_fit
):
    X, _ = multiclass_data
    X_new = X[:50]
    # Different priors, same data: with n=1500 the predictive means nearly coincide.
    np.testing.assert_allclose(
        reference_fit.predict_proba(X_new), symmetric_fit.predict_proba(X_new), atol=0.03
    )


# -- DataFrame input, string labels ----------------------------------------------


@pytest.fixture(scope="module")
def frame_fit():
    X, y = _toy_multiclass(120, seed=6)
    frame = pd.DataFrame(X, columns=["age", "dose"])
    labels = pd.Series(np.array(["high", "low", "mid"])[y], name="response")
    model = PyMCLogisticRegression(draws=200, tune=200, chains=2, random_state=0, progressbar=False)
    return frame, labels, _fit_quietly(model, frame, labels)


def test_dataframe_and_string_labels(frame_fit):
    frame, labels, model = frame_fit
    assert list(model.feature_names_in_) == ["age", "dose"]
    assert list(model.classes_) == ["high", "low", "mid"]
    posterior = model.idata_.posterior
    assert list(posterior["feature"].values) == ["age", "dose"]
    assert list(posterior["class"].values) == ["high", "low", "mid"]
    assert posterior["intercept"].dims == ("chain", "draw", "class")
    predicted = model.predict(frame.iloc[:9])
    assert set(predicted) <= {"high", "low", "mid"}
    assert model.score(frame, labels) > 0.5
    draws = model.sample_posterior_predictive(frame.iloc[:4], random_state=1)
    assert set(np.unique(draws.posterior_predictive["y"].values)) <= {"high", "low", "mid"}
    np.testing.assert_array_equal(model.idata_.observed_data["y"].values, labels.to_numpy())


# -- reproducibility, diagnostics ------------------------------------------------


def _tiny(**kwargs):
    return PyMCLogisticRegression(draws=30, tune=30, chains=2, progressbar=False, **kwargs)


@pytest.mark.slow
def test_random_state_makes_fits_reproducible(small_fit):
    X, y, _ = small_fit
    first = _fit_quietly(_tiny(random_state=7), X, y).idata_.posterior["coef"].values
    again = _fit_quietly(_tiny(random_state=7, cores=1), X, y).idata_.posterior["coef"].values
    other = _fit_quietly(_tiny(random_state=8), X, y).idata_.posterior["coef"].values
    # Same seed: identical draws, whether the chains ran in parallel or one after the other.
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.slow
def test_bad_run_warns_once_with_the_fix(gaussian_data):
    X, y = gaussian_data
    # No tuning and PyMC's unit mass matrix on a posterior with sd ~0.04: the
    # untuned step size is far too large.
    model = PyMCLogisticRegression(
        init="pymc", sampler="pymc", tune=0, draws=40, chains=2, random_state=0, progressbar=False
    )
    with pytest.warns(SamplingWarning) as record:
        model.fit(X, y)
    sampling_warnings = [w for w in record if w.category is SamplingWarning]
    assert len(sampling_warnings) == 1
    message = str(sampling_warnings[0].message)
    assert "R-hat" in message and "ESS" in message and "divergent" in message
    assert "increase tune" in message and "target_accept" in message
    assert model.diagnostics_["n_divergent"] > 0


# -- the PyMC model is the documented density ------------------------------------


def _numpy_log_posterior(model_name, phi, X, y, weights, prior):
    """Independent log posterior (up to a constant) for the three layouts."""
    intercept, coef = phi
    if model_name == "binary":
        eta = intercept + X @ coef
        log_lik = np.where(y == 1, log_expit(eta), log_expit(-eta))
    else:
        logits = intercept + X @ coef.T
        if model_name == "reference":
            logits = np.column_stack([np.zeros(len(y)), logits])
        log_lik = log_softmax(logits, axis=1)[np.arange(len(y)), y]
    coef_scale, intercept_scale = prior
    log_prior = stats.norm.logpdf(coef, 0, coef_scale).sum()
    if intercept_scale is not None:
        log_prior += stats.norm.logpdf(intercept, 0, intercept_scale).sum()
    return float(weights @ log_lik + log_prior)


@pytest.mark.parametrize("layout", ["binary", "reference", "symmetric"])
def test_model_log_density_with_weights_is_the_documented_one(layout):
    from problogreg.models._pymc_model import build_model

    if layout == "binary":
        X, y = _toy_binary(30, seed=1)
    else:
        X, y = _toy_multiclass(30, seed=1)
    weights = np.random.default_rng(0).integers(0, 4, size=len(y)).astype(float)
    prior = ResolvedPrior(np.full(2, 2.5), 3.0 if layout == "symmetric" else 10.0)
    fits = {}
    for name, (X_fit, y_fit, w_fit) in {
        "weighted": (X, y, weights),
        "repeated": (
            np.repeat(X, weights.astype(int), axis=0),
            np.repeat(y, weights.astype(int)),
            None,
        ),
    }.items():
        w_fit = np.ones(len(y_fit)) if w_fit is None else w_fit
        classes = np.unique(y)
        likelihood = SoftmaxLikelihood(
            X_fit, y_fit, w_fit, len(classes), reference=layout != "symmetric"
        )
        model, _ = build_model(PosteriorObjective(likelihood, prior), ["x0", "x1"], classes)
        # A density check on 30 rows: the quickly compiled Python backend suffices.
        fits[name] = model.compile_logp(mode="FAST_COMPILE")
    shapes = {"binary": ((), (2,)), "reference": ((2,), (2, 2)), "symmetric": ((3,), (3, 2))}
    names = ("intercept_free", "coef_free") if layout == "reference" else ("intercept", "coef")
    prior = (2.5, 3.0 if layout == "symmetric" else 10.0)
    rng = np.random.default_rng(3)
    for _ in range(3):
        intercept, coef = (rng.normal(size=shape) for shape in shapes[layout])
        point = dict(zip(names, (intercept, coef), strict=True))
        expected = _numpy_log_posterior(layout, (intercept, coef), X, y, weights, prior)
        # Weighted rows and repeated rows give the same log density, the documented one.
        assert fits["weighted"](point) == pytest.approx(expected, rel=1e-10)
        assert fits["repeated"](point) == pytest.approx(expected, rel=1e-10)


def test_partly_flat_coefficient_prior_density():
    from problogreg.models._pymc_model import build_model

    X, y = _toy_binary(30, seed=2)
    likelihood = SoftmaxLikelihood(X, y, np.ones(len(y)), 2, reference=True)
    objective = PosteriorObjective(likelihood, ResolvedPrior(np.array([2.5, np.inf]), 10.0))
    model, _ = build_model(objective, ["x0", "x1"], np.array([0, 1]))
    log_density = model.compile_logp(mode="FAST_COMPILE")
    rng = np.random.default_rng(4)
    for _ in range(3):
        intercept, coef = rng.normal(), rng.normal(size=2)
        eta = intercept + X @ coef
        expected = np.where(y == 1, log_expit(eta), log_expit(-eta)).sum()
        expected += stats.norm.logpdf(coef[0], 0, 2.5) + stats.norm.logpdf(intercept, 0, 10)
        assert log_density({"intercept": intercept, "coef": coef}) == pytest.approx(expected)


# -- scikit-learn conventions, lazy import -----------------------------------------


@parametrize_with_checks(
    # Tiny runs, chains in one process (forking workers would dominate the time).
    [PyMCLogisticRegression(draws=50, tune=50, chains=2, cores=1, random_state=0)],
    expected_failed_checks=lambda estimator: {
        "check_sample_weight_equivalence_on_dense_data": (
            "NUTS draws are random: weighted and repeated rows give the same posterior "
            "only in distribution (the log densities are checked equal in "
            "test_model_log_density_with_weights_is_the_documented_one)."
        )
    },
)
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::problogreg.models.nuts.SamplingWarning")
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_import_does_not_import_pymc():
    code = (
        "import sys, problogreg\n"
        "problogreg.PyMCLogisticRegression\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_nutpie_fit_builds_the_pymc_model_only_when_asked():
    """The default engine needs no PyMC (its import is a second of a first fit); model_
    is still the documented pm.Model, built on access, and survives pickling."""
    code = (
        "import pickle, sys\n"
        "import numpy as np\n"
        "from problogreg import PyMCLogisticRegression\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(200, 2)); y = (X[:, 0] + rng.logistic(size=200) > 0).astype(int)\n"
        "model = PyMCLogisticRegression(draws=200, chains=2, random_state=0, progressbar=False)\n"
        "model.fit(X, y)\n"
        "assert 'pymc' not in sys.modules\n"
        "assert model.idata_.posterior.attrs['inference_library'] == 'nutpie'\n"
        "restored = pickle.loads(pickle.dumps(model))\n"
        "import pymc as pm\n"
        "for fitted in (model, restored):\n"
        "    assert isinstance(fitted.model_, pm.Model)\n"
        "    assert {'intercept', 'coef', 'y'} <= set(fitted.model_.named_vars)\n"
        "    assert fitted.model_['X'].get_value().shape == (200, 2)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class _StopBeforeSampling(Exception):
    pass


def _stop_engine(monkeypatch, sampler: str, record) -> None:
    """Replace the engine's sample function by one that records its call and stops."""
    import importlib

    engine = importlib.import_module("nutpie" if sampler == "nutpie" else "pymc")

    def record_and_stop(*args, **kwargs):
        record(kwargs)
        raise _StopBeforeSampling

    monkeypatch.setattr(engine, "sample", record_and_stop)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["nutpie", "pymc"])
def test_sampling_limits_blas_threads_to_the_cpus_and_restores_them(monkeypatch, sampler):
    """Chains x BLAS threads <= CPUs while NUTS runs, whatever the environment; the
    user's limits come back afterwards (unlimited BLAS in every chain made a 2-core
    fit 7x slower)."""
    from threadpoolctl import threadpool_info

    from problogreg.models._pytensor_env import available_cpus

    def blas_threads():
        return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")

    seen = {}
    _stop_engine(
        monkeypatch,
        sampler,
        lambda kwargs: seen.update(
            threads=blas_threads(), cores=kwargs["cores"], total=kwargs.get("blas_cores")
        ),
    )
    before = blas_threads()
    X, y = _toy_binary(50, seed=3)
    with pytest.raises(_StopBeforeSampling):
        PyMCLogisticRegression(chains=4, sampler=sampler, progressbar=False).fit(X, y)
    assert seen["threads"] * seen["cores"] <= available_cpus()
    if sampler == "pymc":
        assert seen["total"] == seen["threads"] * seen["cores"]
    assert blas_threads() == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "prior_scale", "near_gaussian"),
    [(2000, 2.5, True), (12, 50.0, False)],
    ids=["near-gaussian", "skewed"],
)
def test_auto_tune_follows_the_laplace_pareto_k(monkeypatch, n, prior_scale, near_gaussian):
    """tune="auto": a short warm-up where the Laplace Gaussian is close to the posterior
    (as judged independently by LaplaceLogisticRegression.check_approximation), a longer
    one where it is far (a small, nearly separable data set under a wide prior)."""
    seen = {}
    _stop_engine(monkeypatch, "nutpie", lambda kwargs: seen.update(tune=kwargs["tune"]))
    X, y = _toy_binary(n, seed=4, coef=(3.0, -2.0))
    settings = {"prior_scale": prior_scale, "intercept_prior_scale": 10.0}
    model = PyMCLogisticRegression(random_state=0, progressbar=False, **settings)
    with pytest.raises(_StopBeforeSampling):
        model.fit(X, y)
    assert seen["tune"] == model.tune_
    laplace = LaplaceLogisticRegression(**settings).fit(X, y)
    check = laplace.check_approximation(X, y, draws=4000, random_state=1)
    if near_gaussian:
        assert check.pareto_k < 0.5 and model.tune_ == 200
    else:
        # k is noisy near the limits: far from 0.5 it is never the short warm-up.
        assert check.pareto_k > 0.6 and model.tune_ in (500, 1000)
    with pytest.raises(_StopBeforeSampling):
        PyMCLogisticRegression(tune=37, progressbar=False, **settings).fit(X, y)
    assert seen["tune"] == 37
