import numpy as np
import pandas as pd
import pytest

from problogreg import datasets


@pytest.mark.parametrize("name", datasets.names())
def test_every_dataset_loads_as_frame_and_series(name):
    X, y = datasets.load(name)
    assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series)
    assert len(X) == len(y) > 0
    assert all(isinstance(column, str) for column in X.columns)
    assert y.nunique() >= 2
    assert np.isfinite(X.to_numpy(dtype=float)).all()


def test_challenger_matches_the_published_table():
    # Dalal, Fowlkes & Hoadley (1989), Table 1: 23 flights, 7 with O-ring
    # distress, launch temperatures from 53 to 81 F.
    X, y = datasets.load("challenger")
    assert X.shape == (23, 1)
    assert (y == "yes").sum() == 7
    assert X["temperature_f"].min() == 53 and X["temperature_f"].max() == 81
    assert sorted(X["temperature_f"][y == "yes"]) == [53, 57, 58, 63, 70, 70, 75]


@pytest.mark.parametrize(
    ("name", "shape", "n_classes"),
    [("breast_cancer", (569, 30), 2), ("iris", (150, 4), 3), ("wine", (178, 13), 3)],
)
def test_uci_sets_have_their_documented_sizes(name, shape, n_classes):
    X, y = datasets.load(name)
    assert X.shape == shape
    assert y.nunique() == n_classes


@pytest.mark.parametrize("name", ["two_gaussians", "separable", "three_class", "xor"])
def test_generators_are_seeded(name):
    X1, y1 = datasets.load(name, random_state=3)
    X2, y2 = datasets.load(name, random_state=3)
    X3, _ = datasets.load(name, random_state=4)
    pd.testing.assert_frame_equal(X1, X2)
    pd.testing.assert_series_equal(y1, y2)
    assert not X1.equals(X3)


def test_separable_generator_is_separated_by_x1():
    X, y = datasets.load("separable", n_samples=200)
    assert ((X["x1"] > 0) == (y == 1)).all()
    assert X["x1"].abs().min() >= 0.5


def test_xor_labels_follow_the_sign_product():
    X, y = datasets.load("xor")
    assert ((X["x1"] * X["x2"] > 0) == (y == 1)).all()


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="challenger"):
        datasets.load("titanic")
