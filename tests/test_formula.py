"""Formulas: the same fit as the hand-built design, for every model; designs rebuilt on new data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import problogreg as plr
from problogreg.formula import FormulaDesign, make_model

FORMULA = "y ~ x + log(z) + C(g) + x:z + scale(z)"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.uniform(0.5, 3.0, size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
        }
    )
    eta = 0.5 * frame.x - 0.4 * np.log(frame.z) + 0.8 * (frame.g == "b") + 0.3 * frame.x * frame.z
    frame["y"] = np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-eta)), "yes", "no")
    return frame


def hand_built(frame: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """The design of FORMULA written out with pandas (scale() uses the training centre and sd)."""
    return pd.DataFrame(
        {
            "x": frame.x,
            "log(z)": np.log(frame.z),
            "C(g)[T.b]": (frame.g == "b").astype(float),
            "C(g)[T.c]": (frame.g == "c").astype(float),
            "scale(z)": (frame.z - train.z.mean()) / train.z.std(),
            "x:z": frame.x * frame.z,
        }
    ).reset_index(drop=True)


@pytest.mark.parametrize("model", ["map", "laplace", "lda", "naive_bayes"])
def test_formula_fit_equals_hand_built_design(model, data):
    fitted = plr.from_formula(FORMULA, data, model=model)
    X = hand_built(data, data)
    assert list(fitted.design_matrix(data).columns) == list(X.columns)
    reference = make_model(model).fit(X, data.y)
    new = data.sample(15, random_state=1)
    np.testing.assert_allclose(
        fitted.predict_proba(new), reference.predict_proba(hand_built(new, data)), atol=1e-10
    )
    if hasattr(reference, "coef_"):
        np.testing.assert_allclose(fitted.coef_, reference.coef_, atol=1e-10)
    assert list(fitted.feature_names_in_) == list(X.columns)


def test_coefficient_names_are_term_names(data):
    table = plr.from_formula(FORMULA, data, model="map").summary()
    terms = table.index.get_level_values("term")
    assert list(terms) == ["intercept", "x", "log(z)", "C(g)[T.b]", "C(g)[T.c]", "scale(z)", "x:z"]


def test_unseen_level_is_a_clear_error(data):
    fitted = plr.from_formula(FORMULA, data, model="map")
    with pytest.raises(ValueError, match=r"not fitted on.*\{'d'\}.*C\(g\): a, b, c"):
        fitted.predict_proba(data.head(3).assign(g="d"))


def test_formula_errors_name_the_problem(data):
    with pytest.raises(ValueError, match="removes the intercept"):
        plr.from_formula("y ~ 0 + x", data, model="map")
    with pytest.raises(ValueError, match="has no response"):
        plr.from_formula("x + z", data, model="map")
    with pytest.raises(ValueError, match="null values"):
        plr.from_formula("y ~ x", data.assign(x=np.where(data.index == 3, np.nan, data.x)))
    with pytest.raises(TypeError, match="DataFrame"):
        plr.from_formula("y ~ x", data.to_numpy())
    with pytest.raises(ValueError, match="becomes 3 columns"):
        plr.from_formula("C(g) ~ x", data)
    labels = plr.from_formula("I(x > 0) ~ z", data, model="map")
    assert list(labels.classes_) == [0, 1]
    with pytest.raises(ValueError, match="model must be one of"):
        plr.from_formula("y ~ x", data, model="svm")
    fitted = plr.from_formula("y ~ x + z", data, model="map")
    with pytest.raises(ValueError, match="Cannot build the design"):
        fitted.predict_proba(data.drop(columns="z"))


def test_categorical_levels_and_variables(data):
    design, _, _ = FormulaDesign.fit(FORMULA, data)
    assert design.categorical_levels("g") == ["a", "b", "c"]
    assert design.categorical_levels("x") is None
    assert design.variables() == ["g", "x", "z"]


def test_binomial_formula_equals_binomial_fit():
    frame = pd.DataFrame(
        {"dose": [1.0, 2.0, 3.0, 4.0, 5.0], "dead": [1, 4, 9, 13, 18], "alive": [19, 16, 11, 7, 2]}
    )
    fitted = plr.from_formula("dead + alive ~ log(dose)", frame, model="laplace")
    X = pd.DataFrame({"log(dose)": np.log(frame.dose)})
    reference = plr.LaplaceLogisticRegression().fit(X, frame.dead, trials=frame.dead + frame.alive)
    np.testing.assert_allclose(fitted.coef_, reference.coef_, atol=1e-12)
    assert fitted.log_likelihood_ == pytest.approx(reference.log_likelihood_, abs=1e-10)
    loo = fitted.loo(frame, draws=200)
    assert loo.n_data_points == 5  # one unit per dose group
    reference_loo = reference.loo(X, frame.dead, trials=frame.dead + frame.alive, draws=200)
    assert loo.elpd == pytest.approx(reference_loo.elpd, abs=1e-10)
    tree = fitted.sample_posterior(draws=50, chains=2, random_state=0, data=frame)
    coef = tree.posterior["coef"].to_numpy().reshape(-1, 1)
    intercept = tree.posterior["intercept"].to_numpy().reshape(-1, 1)
    proba = 1 / (1 + np.exp(-(intercept + coef * np.log(frame.dose.to_numpy()))))
    expected = stats.binom.logpmf(frame.dead, frame.dead + frame.alive, proba)
    np.testing.assert_allclose(tree.log_likelihood["y"].to_numpy().reshape(-1, 5), expected)
    with pytest.raises(ValueError, match="cannot fit binomial counts"):
        plr.from_formula("dead + alive ~ dose", frame, model="lda")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:NUTS may not have converged")
def test_nuts_formula_fit_equals_hand_built_design(data):
    params = dict(draws=100, tune=100, chains=2, random_state=0, progressbar=False)
    small = data.head(60)
    fitted = plr.from_formula("y ~ x + C(g)", small, model="nuts", **params)
    X = pd.DataFrame(
        {
            "x": small.x,
            "C(g)[T.b]": (small.g == "b").astype(float),
            "C(g)[T.c]": (small.g == "c").astype(float),
        }
    )
    reference = plr.PyMCLogisticRegression(**params).fit(X, small.y)
    np.testing.assert_allclose(fitted.coef_, reference.coef_, atol=1e-10)
    np.testing.assert_allclose(fitted.predict_proba(small), reference.predict_proba(X), atol=1e-10)
