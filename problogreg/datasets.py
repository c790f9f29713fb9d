"""Bundled datasets and seeded generators for the lectures' examples.

Every loader returns ``(X, y)``: a DataFrame with named columns and a Series of
labels. Provenance and licences are in ``problogreg/data/README.md``.

Examples
--------
>>> from problogreg import datasets
>>> X, y = datasets.load("challenger")
>>> X.shape, sorted(y.unique())
((23, 1), ['no', 'yes'])
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import numpy as np
import pandas as pd

#: The bundled CSV files, readable whole with :func:`table`.
TABLES = ("challenger", "endometrial")


def table(name: str) -> pd.DataFrame:
    """A bundled CSV file as a DataFrame with every column (for model formulas).

    Examples
    --------
    >>> list(table("challenger").columns)
    ['flight', 'temperature_f', 'pressure_psi', 'n_distressed', 'incident']
    """
    if name not in TABLES:
        raise ValueError(f"No bundled table {name!r}; choose one of {list(TABLES)}.")
    with resources.files("problogreg").joinpath(f"data/{name}.csv").open() as handle:
        return pd.read_csv(handle)


def _challenger() -> tuple[pd.DataFrame, pd.Series]:
    """Launch temperature (°F) and O-ring thermal distress, 23 pre-Challenger flights."""
    frame = table("challenger")
    return frame[["temperature_f"]], frame["incident"]


def _from_sklearn(loader_name: str) -> Callable[[], tuple[pd.DataFrame, pd.Series]]:
    def load() -> tuple[pd.DataFrame, pd.Series]:
        from sklearn import datasets as sk_datasets

        bunch = getattr(sk_datasets, loader_name)(as_frame=True)
        names = np.asarray(bunch.target_names)
        y = pd.Series(names[bunch.target.to_numpy()], name="target", index=bunch.frame.index)
        return bunch.data, y

    load.__doc__ = f"scikit-learn's bundled copy, via ``sklearn.datasets.{loader_name}``."
    return load


def two_gaussians(n_samples: int = 200, separation: float = 2.0, random_state: int = 0):
    """Two overlapping Gaussian classes in 2-D with a shared identity covariance.

    Examples
    --------
    >>> X, y = load("iris")
    >>> X.shape, y.nunique()
    ((150, 4), 3)
    >>> X, y = load("xor", n_samples=50, random_state=1)
    >>> len(y)
    50

    Examples
    --------
    >>> X, y = two_gaussians(n_samples=10)
    >>> X.shape
    (10, 2)
    """
    rng = np.random.default_rng(random_state)
    y = rng.integers(0, 2, n_samples)
    X = rng.normal(size=(n_samples, 2)) + np.outer(y - 0.5, [separation, separation / 2])
    return _frame(X, y)


def separable(n_samples: int = 40, random_state: int = 0):
    """A linearly separable pair of classes in 2-D (the MLE does not exist).

    Examples
    --------
    >>> X, y = separable(n_samples=10)
    >>> X.shape
    (10, 2)
    """
    rng = np.random.default_rng(random_state)
    y = np.arange(n_samples) % 2
    X = rng.normal(size=(n_samples, 2))
    # A margin of at least 0.5 around x1 = 0 keeps the classes strictly apart.
    X[:, 0] = (2 * y - 1) * (0.5 + np.abs(X[:, 0]))
    return _frame(X, y)


def three_class(n_samples: int = 300, random_state: int = 0):
    """Three Gaussian classes in 2-D, centred on the vertices of a triangle.

    Examples
    --------
    >>> X, y = three_class(n_samples=10)
    >>> X.shape
    (10, 2)
    """
    rng = np.random.default_rng(random_state)
    centres = np.array([[0.0, 2.0], [-1.8, -1.0], [1.8, -1.0]])
    y = rng.integers(0, 3, n_samples)
    return _frame(centres[y] + rng.normal(size=(n_samples, 2)), y)


def xor(n_samples: int = 200, random_state: int = 0):
    """The XOR pattern: no linear boundary separates it (a logistic model's blind spot).

    Examples
    --------
    >>> X, y = xor(n_samples=10)
    >>> X.shape
    (10, 2)
    """
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-1, 1, size=(n_samples, 2))
    return _frame(X, (X[:, 0] * X[:, 1] > 0).astype(int))


def _frame(X: np.ndarray, y: np.ndarray) -> tuple[pd.DataFrame, pd.Series]:
    return pd.DataFrame(X, columns=["x1", "x2"]), pd.Series(y, name="y")


_LOADERS: dict[str, Callable] = {
    "challenger": _challenger,
    "breast_cancer": _from_sklearn("load_breast_cancer"),
    "iris": _from_sklearn("load_iris"),
    "wine": _from_sklearn("load_wine"),
    "two_gaussians": two_gaussians,
    "separable": separable,
    "three_class": three_class,
    "xor": xor,
}


def names() -> list[str]:
    """Names accepted by :func:`load`.

    Examples
    --------
    >>> "challenger" in names()
    True
    """
    return list(_LOADERS)


def load(name: str, **kwargs) -> tuple[pd.DataFrame, pd.Series]:
    """Load a bundled dataset or draw a seeded synthetic one.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    **kwargs
        Passed to the generators (``n_samples``, ``random_state``, ...).

    Returns
    -------
    X : DataFrame
    y : Series
    """
    if name not in _LOADERS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {names()}.")
    return _LOADERS[name](**kwargs)
