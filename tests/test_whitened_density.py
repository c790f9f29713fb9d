"""The numpy log density that nutpie samples is the PyMC model's, in whitened coordinates.

Reference: the log density PyTensor compiles from ``model_`` (an independent
implementation of the same posterior); gradients against central finite differences.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from problogreg.models._mode import mode_finder
from problogreg.models._pymc_model import build_model
from problogreg.models._whitened_density import (
    DenseWhitening,
    DiagonalWhitening,
    LowRankWhitening,
    WhitenedLogDensity,
    _binary_curvature_factor,
    whitening_for,
)
from problogreg.models.nuts import PyMCLogisticRegression
from problogreg.posterior.gaussian import laplace_posterior

#: (classes, estimator settings, weighted) of every layout the PyMC model knows.
CASES = {
    "binary": (2, {}, False),
    "binary-weighted-flat-intercept": (2, {"intercept_prior_scale": None}, True),
    "binary-partly-flat-coef": (2, {"prior_scale": [2.5, np.inf, 1.0]}, False),
    "reference": (3, {"multiclass": "reference"}, True),
    "symmetric": (3, {"multiclass": "symmetric"}, False),
    "symmetric-sum-to-zero": (4, {"multiclass": "symmetric", "intercept_prior_scale": None}, True),
}


def _density_and_model(case: str, whitening: str = "dense"):
    n_classes, settings, weighted = CASES[case]
    rng = np.random.default_rng(len(case))
    X = rng.normal(size=(120, 3)) * [1.0, 3.0, 0.2]
    y = rng.integers(0, n_classes, size=120)
    weights = rng.uniform(0.2, 3.0, size=120) if weighted else None
    estimator = PyMCLogisticRegression(autoscale=False, **settings)
    finder = mode_finder(estimator, X, y, weights)
    result = finder.with_hessian(finder.solve())
    objective = finder.objective
    if whitening == "low-rank":
        matrix = LowRankWhitening(objective.precision, _binary_curvature_factor(objective, result))
    else:
        matrix = {
            "dense": DenseWhitening(result.cholesky),
            "diagonal": DiagonalWhitening(1.0 / np.sqrt(np.diag(result.hessian))),
            "identity": None,
        }[whitening]
    density = WhitenedLogDensity(objective, result.mode, matrix)
    model, free = build_model(finder.objective, ["a", "b", "c"], np.arange(n_classes))
    return density, model, free, result.layout


def _model_point(phi, model, free, layout) -> dict:
    """The PyMC model's free variables at the free coordinates phi."""
    initial = model.initial_point()
    blocks = np.split(phi, [layout.n_intercepts])
    return {
        variable.name: block.reshape(initial[variable.name].shape)
        for variable, block in zip(free, blocks, strict=True)
    }


@pytest.mark.parametrize("case", list(CASES))
def test_density_equals_the_pymc_model_up_to_a_constant(case):
    density, model, free, layout = _density_and_model(case)
    model_log_density = model.compile_logp(mode="FAST_COMPILE")
    rng = np.random.default_rng(0)
    offsets = []
    for z in rng.normal(size=(5, density.dim)) * 1.5:
        point = _model_point(density.free_parameters(z), model, free, layout)
        offsets.append(density(z)[0] - model_log_density(point))
    # Normalising constants and the Jacobian of the whitening are all that differ.
    np.testing.assert_allclose(offsets, offsets[0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("whitening", ["dense", "diagonal", "identity", "low-rank"])
def test_gradient_matches_finite_differences(case, whitening):
    if whitening == "low-rank" and (CASES[case][0] > 2 or "flat" in case):
        pytest.skip("the low-rank whitening is for binary models with proper priors")
    density, *_ = _density_and_model(case, whitening)
    z = np.random.default_rng(1).normal(size=density.dim)
    _, gradient = density(z)
    step = 1e-6
    numeric = np.array(
        [
            (density(z + step * unit)[0] - density(z - step * unit)[0]) / (2 * step)
            for unit in np.eye(density.dim)
        ]
    )
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)


def test_whitened_coordinates_are_standard_normal_under_the_laplace_gaussian():
    """z = L^T (phi - mode): the Laplace Gaussian's draws map to N(0, I)."""
    estimator = PyMCLogisticRegression(autoscale=False, multiclass="reference")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3)) * [1.0, 3.0, 0.2]
    y = rng.integers(0, 3, size=120)
    finder = mode_finder(estimator, X, y, rng.uniform(0.2, 3.0, size=120))
    result = finder.with_hessian(finder.solve())
    posterior = laplace_posterior(result)
    z = rng.normal(size=(4, posterior.dim))
    whitened = WhitenedLogDensity(
        finder.objective, posterior.mean, whitening_for(finder.objective, result)
    )
    np.testing.assert_allclose(
        whitened.free_parameters(z), posterior.noise_to_draws(z), rtol=1e-12, atol=1e-12
    )


def test_concurrent_calls_give_the_serial_answers():
    """nutpie calls the density from several chain threads at once."""
    density, *_ = _density_and_model("symmetric-sum-to-zero")
    points = np.random.default_rng(3).normal(size=(64, density.dim))
    serial = [density(z) for z in points]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(density, points))
    for (value, gradient), (expected_value, expected_gradient) in zip(
        concurrent, serial, strict=True
    ):
        assert value == expected_value
        np.testing.assert_array_equal(gradient, expected_gradient)


@pytest.mark.parametrize(("n", "d"), [(40, 120), (200, 5)], ids=["wide", "narrow"])
def test_low_rank_whitening_is_exact(n, d):
    """M M^T = H^{-1} (the dense Hessian of the objective) and M^T H M = I, without
    p x p arrays."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + rng.logistic(size=n) > 0).astype(int)
    finder = mode_finder(PyMCLogisticRegression(), X, y, rng.uniform(0.5, 2.0, size=n))
    result = finder.solve()
    hessian = finder.objective.hessian(result.mode)
    whitening = LowRankWhitening(
        finder.objective.precision, _binary_curvature_factor(finder.objective, result)
    )
    identity = np.eye(d + 1)
    matrix = whitening.apply(identity).T  # columns M e_j
    np.testing.assert_allclose(matrix @ matrix.T, np.linalg.inv(hessian), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(matrix.T @ hessian @ matrix, identity, atol=1e-8)
    np.testing.assert_allclose(whitening.apply_transpose(identity).T, matrix.T, atol=1e-14)
    assert max(array.size for array in vars(whitening).values()) <= (d + 1) * min(n, d + 1)


def test_whitening_follows_the_cost_rule():
    rng = np.random.default_rng(6)

    def whitening(n, d, n_classes=2, **settings):
        X = rng.normal(size=(n, d))
        y = rng.integers(0, n_classes, size=n)
        y[:n_classes] = np.arange(n_classes)
        finder = mode_finder(PyMCLogisticRegression(**settings), X, y, None)
        return whitening_for(finder.objective, finder.with_hessian(finder.solve()))

    assert isinstance(whitening(100, 5), DenseWhitening)
    assert isinstance(whitening(20, 60), LowRankWhitening)
    # No low-rank form for a flat prior or the softmax: dense while p is moderate.
    assert isinstance(whitening(20, 60, intercept_prior_scale=None), DenseWhitening)
    assert isinstance(whitening(20, 30, n_classes=3), DenseWhitening)


def test_wide_softmax_beyond_the_dense_limit_is_scaled_by_the_hessian_diagonal(monkeypatch):
    """No low-rank form for the softmax: past the dense limit, M = diag(H)^(-1/2) from the
    fit's dual (Woodbury) Hessian, equal to the dense Hessian's diagonal."""
    import problogreg.models._whitened_density as whitened_density

    monkeypatch.setattr(whitened_density, "MAX_DENSE_WHITENING", 10)
    rng = np.random.default_rng(7)
    X = rng.normal(size=(20, 40))
    y = np.arange(20) % 3
    finder = mode_finder(PyMCLogisticRegression(), X, y, None)
    result = finder.with_hessian(finder.solve())
    whitening = whitening_for(finder.objective, result)
    assert isinstance(whitening, DiagonalWhitening)
    hessian = finder.objective.hessian(result.mode)
    np.testing.assert_allclose(whitening.scale, 1.0 / np.sqrt(np.diag(hessian)), rtol=1e-10)
