r"""Model formulas: ``"y ~ age + C(sex) + age:dose"`` for every estimator and the study.

A formula is parsed and its design matrix built by formulaic (Wilkinson formulas,
as R's ``glm`` and statsmodels' formula API read them): categorical coding
(``C(g)``, text columns), interactions (``a:b``, ``a*b``), transforms
(``log(x)``, ``np.sqrt(x)``, ``scale(x)``, ``I(x**2)``). The design's
``Intercept`` column is left out because every problogreg model has its own
intercept; the other columns keep formulaic's names (``C(g)[T.b]``), so
coefficients, summaries and figures are named by the formula's terms.

The left-hand side is either one column of class labels (any type) or two counts,
``successes + failures ~ ...`` (the statsmodels spelling of R's
``cbind(successes, failures)``): grouped binomial data, fitted with the exact
binomial likelihood (``fit(X, successes, trials=successes + failures)``).

:class:`FormulaModel` keeps the fitted design (its levels and the centres and
scales of stateful transforms), so ``predict_proba(new_data)`` rebuilds the same
columns from a new DataFrame; a level not seen in fitting is an error.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Model names accepted by :func:`from_formula` and the classes they name.
MODEL_CLASSES = {
    "map": ("models.map", "MAPLogisticRegression"),
    "laplace": ("models.laplace", "LaplaceLogisticRegression"),
    "nuts": ("models.nuts", "PyMCLogisticRegression"),
    "lda": ("models.generative", "SharedCovarianceGaussian"),
    "naive_bayes": ("models.generative", "NaiveBayes"),
}

#: Functions a formula may call besides formulaic's own (``C``, ``scale``, ``I``, ...).
FORMULA_FUNCTIONS = {
    "np": np,
    "log": np.log,
    "log1p": np.log1p,
    "log2": np.log2,
    "log10": np.log10,
    "exp": np.exp,
    "sqrt": np.sqrt,
}


def make_model(model: str, **params):
    """An unfitted estimator by name ("map", "laplace", "nuts", "lda", "naive_bayes")."""
    from importlib import import_module

    if model not in MODEL_CLASSES:
        raise ValueError(f"model must be one of {sorted(MODEL_CLASSES)}; got {model!r}.")
    module, name = MODEL_CLASSES[model]
    return getattr(import_module(f".{module}", __package__), name)(**params)


def _check_frame(data, what: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"{what} must be a pandas DataFrame with the formula's columns; got "
            f"{type(data).__name__}. Wrap arrays as pd.DataFrame(array, columns=[...])."
        )
    return data


@dataclass(frozen=True)
class Response:
    """The left-hand side of a formula, evaluated on data.

    ``y`` holds class labels, or the successes of grouped binomial data with
    ``trials`` their number of trials (else None).
    """

    y: pd.Series
    trials: np.ndarray | None = None


@dataclass(frozen=True)
class FormulaDesign:
    """A formula with the state of its fitted design: rebuilds the columns for new data.

    Attributes
    ----------
    formula : str
    spec : formulaic.ModelSpec
        The right-hand side's design (levels, transform state) from the fitting data.
    response_terms : tuple of str
        One label column, or (successes, failures).
    """

    formula: str
    spec: object
    response_terms: tuple

    @classmethod
    def fit(cls, formula: str, data) -> tuple[FormulaDesign, pd.DataFrame, Response]:
        """Parse ``formula`` and build its design on ``data``: (design, X, response)."""
        from formulaic import Formula

        data = _check_frame(data, "data")
        try:
            parsed = Formula(formula)
        except Exception as err:
            raise ValueError(f"Cannot parse the formula {formula!r}: {err}") from None
        if not hasattr(parsed, "lhs"):
            raise ValueError(
                f"The formula {formula!r} has no response: write it as 'y ~ x1 + x2' (class "
                "labels) or 'successes + failures ~ x1 + x2' (binomial counts)."
            )
        response_terms = tuple(str(term) for term in parsed.lhs)
        if len(response_terms) not in (1, 2):
            raise ValueError(
                f"The left-hand side of {formula!r} has {len(response_terms)} terms; write one "
                "column of class labels ('y ~ ...') or two counts ('successes + failures ~ "
                "...')."
            )
        matrix = _evaluate(parsed.rhs, data)
        if "Intercept" not in matrix.columns:
            raise ValueError(
                f"The formula {formula!r} removes the intercept ('0 +' or '- 1'), but every "
                "problogreg model has an intercept (with its own prior). Keep it in the "
                "formula; categorical terms are then coded against their first level."
            )
        design = cls(formula, matrix.model_spec, response_terms)
        return design, design._features(matrix), design.response(data)

    @property
    def binomial(self) -> bool:
        return len(self.response_terms) == 2

    @property
    def feature_names(self) -> list[str]:
        return [name for name in self.spec.column_names if name != "Intercept"]

    def design_matrix(self, data) -> pd.DataFrame:
        """The fitted design's columns for (new) data, named by the formula's terms.

        Raises
        ------
        ValueError
            For a column the formula needs that ``data`` lacks, missing values, or a
            categorical level the model was not fitted on.
        """
        data = _check_frame(data, "X")
        with warnings.catch_warnings():
            from formulaic.errors import DataMismatchWarning

            warnings.simplefilter("error", DataMismatchWarning)
            try:
                matrix = _evaluate(self.spec, data)
            except DataMismatchWarning as err:
                raise ValueError(
                    f"X has categorical levels the model was not fitted on ({err}). The "
                    f"fitted levels are: {self._levels_text()}. A logistic model has no "
                    "coefficient for an unseen level: drop those rows or recode them to a "
                    "fitted level."
                ) from None
        return self._features(matrix)

    def response(self, data) -> Response:
        """The response of the formula on ``data`` (labels, or successes and trials)."""
        data = _check_frame(data, "data")
        columns = []
        for term in self.response_terms:
            if term in data.columns:
                values = data[term]
            else:
                matrix = _evaluate(f"0 + {term}", data)
                if matrix.shape[1] != 1:
                    raise ValueError(
                        f"The response {term!r} becomes {matrix.shape[1]} columns "
                        f"{list(matrix.columns)}; name a column of labels instead, or a "
                        "numeric expression such as I(y > 0)."
                    )
                values = matrix.iloc[:, 0]
            if values.isna().any():
                raise ValueError(
                    f"The response {term!r} has missing values in rows "
                    f"{list(np.flatnonzero(values.isna().to_numpy())[:10])}; drop or fill them."
                )
            columns.append(values.rename(term).reset_index(drop=True))
        if not self.binomial:
            return Response(columns[0])
        successes, failures = columns
        return Response(successes, trials=successes.to_numpy() + failures.to_numpy())

    def _features(self, matrix) -> pd.DataFrame:
        frame = pd.DataFrame(np.asarray(matrix, dtype=float), columns=list(matrix.columns))
        return frame.drop(columns="Intercept")

    def _levels_text(self) -> str:
        parts = [
            f"{factor}: {', '.join(map(str, state['categories']))}"
            for factor, (_, state) in self.spec.encoder_state.items()
            if "categories" in state
        ]
        return "; ".join(parts) or "none"

    def categorical_levels(self, variable: str) -> list | None:
        """The fitted levels of a data column that enters a categorical term, else None."""
        pattern = re.compile(rf"(^|[^\w.]){re.escape(variable)}($|[^\w])")
        for factor, (_, state) in self.spec.encoder_state.items():
            if "categories" in state and pattern.search(factor):
                return list(state["categories"])
        return None

    def variables(self) -> list[str]:
        """The data columns the right-hand side reads."""
        return sorted(self.spec.variables_by_source.get("data", ()))


def _evaluate(spec, data: pd.DataFrame):
    """formulaic's model matrix, with missing values refused instead of rows dropped."""
    from formulaic import model_matrix

    try:
        return model_matrix(spec, data, context=FORMULA_FUNCTIONS, na_action="raise")
    except Warning:
        raise
    except Exception as err:
        raise ValueError(f"Cannot build the design matrix: {err}") from None


class FormulaModel:
    """A problogreg estimator fitted through a model formula.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + C(g) + x1:x2"`` (class labels) or ``"successes + failures ~ ..."``
        (grouped binomial counts); see the module docstring.
    estimator : problogreg estimator
        Any of the five models, unfitted; it is fitted on a clone.

    Attributes
    ----------
    estimator_ : the fitted estimator, on the formula's design (its
        ``feature_names_in_`` are the term names).
    design_ : FormulaDesign
    Every fitted attribute of ``estimator_`` (``coef_``, ``classes_``, ``result_``,
    ``posterior_``, ...) is also readable here.

    Examples
    --------
    >>> import pandas as pd
    >>> import problogreg as plr
    >>> data = pd.DataFrame({"y": [0, 1, 0, 1, 1, 0, 1, 0], "x": range(8),
    ...                      "g": list("abababab")})
    >>> model = plr.from_formula("y ~ x + C(g)", data, model="map")
    >>> list(model.feature_names_in_)
    ['x', 'C(g)[T.b]']
    >>> model.predict_proba(data.head(2)).shape
    (2, 2)
    """

    def __init__(self, formula: str, estimator):
        self.formula = formula
        self.estimator = estimator

    def fit(self, data, sample_weight=None):
        """Build the design on ``data`` and fit a clone of the estimator to it."""
        from sklearn.base import clone

        design, X, response = FormulaDesign.fit(self.formula, data)
        estimator = clone(self.estimator)
        if response.trials is None:
            estimator.fit(X, response.y, sample_weight=sample_weight)
        else:
            _check_binomial_support(estimator)
            estimator.fit(X, response.y, sample_weight=sample_weight, trials=response.trials)
        self.design_, self.estimator_ = design, estimator
        return self

    def __getattr__(self, name: str):
        # Fitted attributes (ending in "_") are the estimator's; everything else is ours.
        if name.endswith("_") and not name.startswith("__") and "estimator_" in vars(self):
            return getattr(self.estimator_, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"FormulaModel({self.formula!r}, {self.estimator!r})"

    def _fitted(self):
        if "estimator_" not in vars(self):
            raise AttributeError("This FormulaModel is not fitted yet; call fit(data) first.")
        return self.estimator_

    def design_matrix(self, data) -> pd.DataFrame:
        """The design of (new) data: the columns the estimator was fitted on."""
        self._fitted()
        return self.design_.design_matrix(data)

    def response(self, data) -> Response:
        """The formula's response on ``data``."""
        self._fitted()
        return self.design_.response(data)

    def _scoring_args(self, data) -> tuple[pd.DataFrame, pd.Series, dict]:
        """(X, y, keywords) of ``data`` for the estimator's scoring methods; the
        keywords hold ``trials`` for binomial counts."""
        response = self.response(data)
        X = self.design_matrix(data)
        return X, response.y, {} if response.trials is None else {"trials": response.trials}

    # -- predictions ------------------------------------------------------------
    def predict_proba(self, data, **kwargs):
        """Class probabilities for the rows of a DataFrame (the design rebuilt)."""
        return self._fitted().predict_proba(self.design_matrix(data), **kwargs)

    def predict_log_proba(self, data, **kwargs):
        return self._fitted().predict_log_proba(self.design_matrix(data), **kwargs)

    def predict(self, data, **kwargs):
        return self._fitted().predict(self.design_matrix(data), **kwargs)

    def predict_interval(self, data, **kwargs):
        return self._fitted().predict_interval(self.design_matrix(data), **kwargs)

    def score(self, data):
        """Accuracy on ``data`` (class labels only)."""
        X, y, _ = self._scoring_args(data)
        return self._fitted().score(X, y)

    # -- tables -----------------------------------------------------------------
    def summary(self, *args, **kwargs):
        return self._fitted().summary(*args, **kwargs)

    def odds_ratios(self, *args, **kwargs):
        return self._fitted().odds_ratios(*args, **kwargs)

    def marginal_effects(self, data, features=None, **kwargs):
        """Average marginal effects of the formula's variables over the rows of ``data``.

        A numeric variable gets the average derivative of P(class) through every
        term it enters (``x``, ``x:z``, ``log(x)``, ``scale(x)``: by central
        differences of the rebuilt design); a categorical variable, or a numeric
        one with only the values 0 and 1, gets the average change from its first
        level to each other level (every row set to each level). Uncertainty as
        for the estimator's ``marginal_effects`` (delta method for MAP, posterior
        draws for Laplace, NUTS, LDA and Naive Bayes).

        Parameters
        ----------
        data : DataFrame
        features : list of str, optional
            Data columns (default: every column the right-hand side reads).
        **kwargs : ``ci_prob``, and ``draws``, ``random_state`` for Laplace, LDA and
            Naive Bayes.
        """
        from .models._marginal_effects import Contrast

        estimator = self._fitted()
        data = _check_frame(data, "data").reset_index(drop=True)
        known = self.design_.variables()
        features = known if features is None else list(features)
        unknown = [name for name in features if name not in known]
        if unknown:
            raise ValueError(f"features {unknown} are not variables of the formula; use {known}.")
        contrasts = []
        for name in features:
            levels = self.design_.categorical_levels(name)
            if levels is None and set(np.unique(data[name])) <= {0, 1}:
                levels = [0, 1]
            if levels is not None:
                low = self.design_matrix(data.assign(**{name: levels[0]})).to_numpy()
                for level in levels[1:]:
                    high = self.design_matrix(data.assign(**{name: level})).to_numpy()
                    contrasts.append(Contrast(f"{name}[{level}]", "discrete", high, low, 1.0))
                continue
            values = data[name].to_numpy(dtype=float)
            step = Contrast.step_for(values)
            high = self.design_matrix(data.assign(**{name: values + step})).to_numpy()
            low = self.design_matrix(data.assign(**{name: values - step})).to_numpy()
            contrasts.append(Contrast(name, "derivative", high, low, 2 * step))
        return estimator._effect_table(contrasts, **kwargs)

    # -- the posterior protocol -------------------------------------------------
    def loo(self, data, sample_weight=None, **kwargs):
        """Leave-one-out ELPD on the training data (a group of binomial data is one unit)."""
        X, y, counts = self._scoring_args(data)
        return self._fitted().loo(X, y, sample_weight, **counts, **kwargs)

    def check_approximation(self, data, sample_weight=None, **kwargs):
        """The Laplace fit's PSIS check against the exact posterior (class labels only)."""
        X, y, counts = self._scoring_args(data)
        if counts:
            raise ValueError(
                "check_approximation takes class labels, not binomial counts: compare the "
                "Laplace fit with model='nuts' instead."
            )
        return self._fitted().check_approximation(X, y, sample_weight, **kwargs)

    def sample_posterior(self, *args, data=None, **kwargs):
        """The estimator's ``sample_posterior(draws, chains, random_state)`` as a DataTree;
        with ``data``, the pointwise log-likelihood of its rows too (one per group for
        binomial counts)."""
        estimator = self._fitted()
        if data is None:
            return estimator.sample_posterior(*args, **kwargs)
        X, y, counts = self._scoring_args(data)
        return estimator.sample_posterior(*args, X=X, y=y, **counts, **kwargs)


def _check_binomial_support(estimator) -> None:
    import inspect

    if "trials" not in inspect.signature(estimator.fit).parameters:
        raise ValueError(
            f"{type(estimator).__name__} cannot fit binomial counts ('successes + failures ~ "
            "...'); use model='map', 'laplace' or 'nuts', or give one row per trial."
        )


def from_formula(formula: str, data, model="laplace", sample_weight=None, **params):
    """Fit a model given by a formula on a DataFrame.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + C(g) + x1:x2 + log(x3)"``, or ``"successes + failures ~ ..."`` for
        grouped binomial counts (MAP, Laplace and NUTS).
    data : DataFrame
    model : {"map", "laplace", "nuts", "lda", "naive_bayes"} or estimator, default="laplace"
    sample_weight : array-like, optional
    **params
        The estimator's parameters (``prior_scale=None``, ``random_state=0``, ...),
        when ``model`` is a name.

    Returns
    -------
    FormulaModel
        Fitted; ``predict_proba(new_data)`` rebuilds the design from a DataFrame.
    """
    if isinstance(model, str):
        estimator = make_model(model, **params)
    elif params:
        raise ValueError("Pass estimator parameters either in the estimator or as **params.")
    else:
        estimator = model
    return FormulaModel(formula, estimator).fit(data, sample_weight=sample_weight)
