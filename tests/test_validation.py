"""Bad input gives a ValueError that says what is wrong; inputs are never modified."""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from problogreg.core import validation
from problogreg.models.map import MAPLogisticRegression


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    y = np.arange(12) % 3
    return X, y


def with_value(X, value):
    bad = X.copy()
    bad[3, 1] = value
    return bad


BAD_FIT_INPUTS = {
    "nan-X": (lambda X, y: (with_value(X, np.nan), y, None), "NaN"),
    "inf-X": (lambda X, y: (with_value(X, np.inf), y, None), "infinity"),
    "neg-inf-X": (lambda X, y: (with_value(X, -np.inf), y, None), "infinity"),
    "nan-y": (lambda X, y: (X, np.where(y == 0, np.nan, y), None), "NaN"),
    "empty": (lambda X, y: (X[:0], y[:0], None), "0 sample"),
    "no-features": (lambda X, y: (X[:, :0], y, None), "0 feature"),
    "1d-X": (lambda X, y: (X[:, 0], y, None), "Expected 2D array"),
    "3d-X": (lambda X, y: (X[:, :, None], y, None), "dim 3"),
    "length-mismatch": (lambda X, y: (X, y[:-1], None), "inconsistent numbers of samples"),
    "2d-y": (lambda X, y: (X, np.column_stack([y, y]), None), "1d array"),
    "one-class": (lambda X, y: (X, np.full(len(y), "a"), None), "only one class \\('a'\\)"),
    "continuous-y": (lambda X, y: (X, np.linspace(0, 1, len(y)), None), "continuous"),
    "negative-weight": (
        lambda X, y: (X, y, np.r_[-1.0, np.ones(len(y) - 1)]),
        "1 negative values",
    ),
    "negative-scalar-weight": (lambda X, y: (X, y, -2.0), "negative"),
    "nan-weight": (lambda X, y: (X, y, np.r_[np.nan, np.ones(len(y) - 1)]), "NaN or infinite"),
    "inf-weight": (lambda X, y: (X, y, np.r_[np.inf, np.ones(len(y) - 1)]), "NaN or infinite"),
    "weight-shape": (lambda X, y: (X, y, np.ones(len(y) + 1)), "one weight per sample"),
    "all-zero-weight": (lambda X, y: (X, y, np.zeros(len(y))), "zero for every sample"),
    "class-without-weight": (
        lambda X, y: (X, y, (y != 2).astype(float)),
        "class 2 has zero sample_weight",
    ),
    "string-features": (lambda X, y: (np.full(X.shape, "a"), y, None), "could not convert"),
    # Issue 16: labels that are missing or of mixed types get a message that says so,
    # not scikit-learn's "Unknown label type: unknown".
    "none-y": (
        lambda X, y: (X, np.array([None, *y[1:]], dtype=object), None),
        r"y contains NaN or None \(missing labels\) at 1 of 12 rows \(0;",
    ),
    "nan-in-series-y": (
        lambda X, y: (X, pd.Series(["a", np.nan, *["b", "c"] * 5]), None),
        r"missing labels\) at 1 of 12 rows \(1;",
    ),
    "mixed-type-y": (
        lambda X, y: (X, np.array(["a", 1, *["b", "c"] * 5], dtype=object), None),
        r"y mixes types: numbers and str \(row 0 is 'a'; row 1 is 1\)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FIT_INPUTS))
def test_bad_fit_input_raises_value_error(data, case):
    make, match = BAD_FIT_INPUTS[case]
    X, y, weights = make(*data)
    with pytest.raises(ValueError, match=match):
        MAPLogisticRegression().fit(X, y, sample_weight=weights)


def test_labels_of_numbers_in_an_object_array_are_accepted(data):
    X, y = data
    model = MAPLogisticRegression().fit(X, y.astype(object))
    assert model.classes_.tolist() == [0, 1, 2]
    assert model.predict(X).dtype.kind == "i"


@pytest.mark.parametrize(
    "params, match",
    [
        ({"prior_scale": -1.0}, "prior_scale"),
        ({"prior_scale": 0.0}, "prior_scale"),
        ({"prior_scale": [1.0, 2.0, 3.0]}, r"prior_scale has shape \(3,\)"),
        ({"prior_scale": [1.0, -2.0]}, "prior_scale must be positive"),
        ({"intercept_prior_scale": -1.0}, "intercept_prior_scale"),
        ({"multiclass": "ovr"}, "multiclass"),
        ({"solver": "sag"}, "solver"),
        ({"tol": 0.0}, "tol"),
        ({"max_iter": -1}, "max_iter"),
    ],
)
def test_bad_parameters_are_named(data, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        MAPLogisticRegression(**params).fit(X, y)


def test_predict_checks_fitted_and_features(data):
    X, y = data
    with pytest.raises(NotFittedError):
        MAPLogisticRegression().predict(X)
    model = MAPLogisticRegression().fit(X, y)
    with pytest.raises(
        ValueError, match="X has 1 features, but MAPLogisticRegression is expecting 2"
    ):
        model.predict(X[:, :1])
    with pytest.raises(ValueError, match="NaN"):
        model.predict_proba(with_value(X, np.nan))
    with pytest.raises(ValueError, match="ci_prob"):
        model.summary(ci_prob=1.0)


def test_predict_with_renamed_dataframe_columns_is_rejected(data):
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b"])
    model = MAPLogisticRegression().fit(frame, y)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame.rename(columns={"a": "c"}))


@pytest.mark.parametrize("prior_scale", [2.5, None])
def test_inputs_are_not_modified(data, prior_scale):
    X, y = data
    y = y % 2
    X_frame = pd.DataFrame(X * [1.0, 100.0], columns=["u", "v"])
    y_series = pd.Series(np.where(y == 1, "yes", "no"))
    weights = np.linspace(0.5, 2.0, len(y))
    scales = np.array([2.0, 3.0]) if prior_scale else None
    originals = [X.copy(), X_frame.copy(), y_series.copy(), weights.copy()]
    for inputs in ((X, y), (X_frame, y_series)):
        model = MAPLogisticRegression(prior_scale=scales).fit(*inputs, sample_weight=weights)
        model.predict_proba(inputs[0])
        model.summary()
    np.testing.assert_array_equal(X, originals[0])
    pd.testing.assert_frame_equal(X_frame, originals[1])
    pd.testing.assert_series_equal(y_series, originals[2])
    np.testing.assert_array_equal(weights, originals[3])
    if scales is not None:
        np.testing.assert_array_equal(scales, [2.0, 3.0])


def unaligned_copy(array: np.ndarray) -> np.ndarray:
    """``array``'s values at an offset of 4 bytes in a buffer, as unpickling received bytes
    (a Dask array computed on a distributed cluster) can leave them."""
    raw = bytearray(array.nbytes + 4)
    copy = np.frombuffer(raw, dtype=array.dtype, offset=4, count=array.size)
    copy = copy.reshape(array.shape)
    copy[...] = array
    assert not copy.flags.aligned
    return copy


def test_unaligned_arrays_are_fitted_and_predicted_through_aligned_copies():
    """Numpy and BLAS read unaligned float64 many times slower than a copy costs: X and
    the weights are copied into aligned memory, and the fit is the same."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(int)
    weights = rng.uniform(0.5, 2.0, 300)
    estimator = MAPLogisticRegression()
    data = validation.validate_fit_data(estimator, unaligned_copy(X), y, unaligned_copy(weights))
    assert data.X.flags.aligned and data.sample_weight.flags.aligned
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.sample_weight, weights)
    fitted = MAPLogisticRegression().fit(unaligned_copy(X), y, unaligned_copy(weights))
    reference = MAPLogisticRegression().fit(X, y, weights)
    np.testing.assert_array_equal(fitted.coef_, reference.coef_)
    checked = validation.validate_predict_data(fitted, unaligned_copy(X))
    assert checked.flags.aligned
    np.testing.assert_array_equal(
        fitted.predict_proba(unaligned_copy(X)), reference.predict_proba(X)
    )


@pytest.mark.parametrize("value", [0, 1, 1.0, -0.5, 94, True, np.array([0.5]), "0.9"])
def test_probability_arguments_strictly_inside_0_1(value):
    with pytest.raises(ValueError, match="ci_prob must be a number strictly between 0 and 1"):
        validation.check_probability(value, "ci_prob")


def test_probability_argument_accepted_as_float():
    result = validation.check_probability(np.float32(0.25), "prob")
    assert type(result) is float and result == 0.25
