r"""Average marginal effects: how P(class) moves with a feature, averaged over rows.

Each effect is a *contrast* between two designs of the same rows, a high one
:math:`X^+` and a low one :math:`X^-`, divided by a step :math:`h`:

.. math::

    \mathrm{AME}_k = \frac{1}{n h} \sum_i \left[ p_k(x^+_i; \theta) - p_k(x^-_i; \theta) \right].

For a continuous feature :math:`x^\pm = x \pm \tfrac h2 e_j` (a central
difference, so formula terms that transform the feature are differentiated
through); for a 0/1 or categorical feature :math:`x^+` and :math:`x^-` set every
row to a level and to the reference level, :math:`h = 1` (a discrete change, the
average predictive comparison). The average over the sample is statsmodels'
``get_margeff(at="overall")``.

Uncertainty: for a point estimate (MAP, MLE) the delta method,
:math:`\operatorname{sd} = \sqrt{g^\top \Sigma g}` with :math:`g` the exact
gradient of the AME in likelihood coordinates, :math:`\partial p_k / \partial z_l =
p_k(\delta_{kl} - p_l)`, and :math:`\Sigma` the inverse Hessian; for Laplace and
NUTS (and the conjugate posteriors of LDA and Naive Bayes) the AME of every posterior
draw (mean, sd and equal-tailed interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..core.numerics import log_softmax
from ..core.validation import check_probability, feature_names, validate_predict_data
from ..posterior.draws import normal_interval

#: Relative size of the central-difference step of a continuous feature: small enough
#: that the O(h^2) error is far below 1e-8 of the effect, large enough against rounding.
DERIVATIVE_STEP = 1e-5


@dataclass(frozen=True)
class Contrast:
    """One effect: label, kind ("derivative" or "discrete"), designs (n, d), and step."""

    name: str
    kind: str
    high: np.ndarray
    low: np.ndarray
    step: float

    @staticmethod
    def step_for(values: np.ndarray) -> float:
        """Half the central-difference step for a column: relative to its spread."""
        scale = float(np.std(values)) or max(float(np.max(np.abs(values))), 1.0)
        return DERIVATIVE_STEP * scale


def column_contrasts(X: np.ndarray, names: list[str], features, discrete: bool) -> list[Contrast]:
    """Contrasts of raw columns: 0/1 columns as discrete changes when ``discrete``."""
    if features is None:
        chosen = list(range(len(names)))
    else:
        unknown = [f for f in features if f not in names]
        if unknown:
            raise ValueError(f"features {unknown} are not features of the model; use {names}.")
        chosen = [names.index(f) for f in features]
    contrasts = []
    for j in chosen:
        column = X[:, j]
        high, low = X.copy(), X.copy()
        if discrete and np.isin(column, (0.0, 1.0)).all():
            high[:, j], low[:, j] = 1.0, 0.0
            contrasts.append(Contrast(names[j], "discrete", high, low, 1.0))
        else:
            half = Contrast.step_for(column)
            high[:, j] += half
            low[:, j] -= half
            contrasts.append(Contrast(names[j], "derivative", high, low, 2 * half))
    return contrasts


def _reported_classes(classes) -> list[int]:
    """Binary models report the effect on P(classes_[1]); multiclass models every class."""
    return [1] if len(classes) == 2 else list(range(len(classes)))


def _table(contrasts, classes, estimate, std_error, lower, upper, ci_prob, z_test: bool):
    reported = _reported_classes(classes)
    index = pd.MultiIndex.from_tuples(
        [(classes[k], c.name) for k in reported for c in contrasts], names=["class", "feature"]
    )
    table = pd.DataFrame(
        {
            "kind": [c.kind for _ in reported for c in contrasts],
            "estimate": estimate.T.ravel(),
            "std_error": std_error.T.ravel(),
        },
        index=index,
    )
    if z_test:
        z = table["estimate"] / table["std_error"]
        table["z"] = z
        table["p_value"] = 2 * stats.norm.sf(np.abs(z))
    table["ci_lower"], table["ci_upper"] = lower.T.ravel(), upper.T.ravel()
    table.attrs["ci_prob"] = ci_prob
    return table


def delta_method_table(result, classes, contrasts, ci_prob=0.95) -> pd.DataFrame:
    """AMEs at the mode of a :class:`~problogreg.core.result.MAPResult`, delta-method sds."""
    from ..posterior.gaussian import laplace_posterior

    ci_prob = check_probability(ci_prob, "ci_prob")
    layout = result.layout
    intercept, coef = layout.class_rows(result.theta)
    reported = _reported_classes(classes)
    # Likelihood row r moves the logit of class row_class[r] (class 0 is the reference).
    row_class = np.arange(layout.n_rows) + (1 if layout.reference else 0)
    estimate = np.empty((len(contrasts), len(reported)))
    gradients = []
    for c, contrast in enumerate(contrasts):
        gradient = np.zeros((len(reported), layout.n_likelihood))
        for sign, X in ((1.0, contrast.high), (-1.0, contrast.low)):
            proba = np.exp(log_softmax(X @ coef.T + intercept, axis=-1))
            for out, k in enumerate(reported):
                # d p_k / d z_l = p_k (delta_kl - p_l), for the logit of each likelihood row
                slope = proba[:, [k]] * ((row_class == k) - proba[:, row_class])
                scale = sign / (len(X) * contrast.step)
                gradient[out, : layout.n_rows] += scale * slope.sum(axis=0)
                gradient[out, layout.n_rows :] += scale * (slope.T @ X).ravel()
        for out, k in enumerate(reported):
            high = np.exp(log_softmax(contrast.high @ coef.T + intercept, axis=-1))[:, k]
            low = np.exp(log_softmax(contrast.low @ coef.T + intercept, axis=-1))[:, k]
            estimate[c, out] = np.mean(high - low) / contrast.step
        gradients.append(gradient)
    transform = np.vstack(gradients) @ layout.jacobian()
    std_error = laplace_posterior(result).marginal_sd(transform).reshape(estimate.shape)
    lower, upper = normal_interval(estimate, std_error, ci_prob)
    return _table(contrasts, classes, estimate, std_error, lower, upper, ci_prob, True)


def draws_table(predictor, classes, contrasts, ci_prob=0.95) -> pd.DataFrame:
    """AMEs of every posterior draw of a DrawPredictor: mean, sd, equal-tailed interval."""
    ci_prob = check_probability(ci_prob, "ci_prob")
    reported = _reported_classes(classes)
    per_draw = np.zeros((len(contrasts), predictor.n_draws, len(reported)))
    for c, contrast in enumerate(contrasts):
        blocks = zip(
            predictor.log_proba_blocks(contrast.high),
            predictor.log_proba_blocks(contrast.low),
            strict=True,
        )
        for (_, high), (_, low) in blocks:
            per_draw[c] += (np.exp(high) - np.exp(low))[..., reported].sum(axis=1)
        per_draw[c] /= len(contrast.high) * contrast.step
    tails = [(1 - ci_prob) / 2, (1 + ci_prob) / 2]
    lower, upper = np.quantile(per_draw, tails, axis=1)
    return _table(
        contrasts,
        classes,
        per_draw.mean(axis=1),
        per_draw.std(axis=1, ddof=1),
        lower,
        upper,
        ci_prob,
        False,
    )


class MarginalEffectsMixin:
    """``marginal_effects(X, features)`` for an estimator with ``_effect_table(contrasts, ...)``."""

    def marginal_effects(self, X, features=None, discrete=True, **kwargs):
        """Average marginal effects of features on the class probabilities.

        The average over the rows of X of :math:`\\partial p_k / \\partial x_j`
        (a continuous feature) or of :math:`p_k(x_j = 1) - p_k(x_j = 0)` (a
        feature with only the values 0 and 1, when ``discrete``), as statsmodels'
        ``get_margeff(at="overall", dummy=discrete)``; see
        :mod:`problogreg.models._marginal_effects`.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The rows to average over (usually the training data).
        features : list of str, optional
            Feature names (DataFrame columns, else ``x0``, ``x1``, ...); default all.
        discrete : bool, default=True
            0/1 features get discrete changes instead of derivatives.
        ci_prob : float, default=0.95
        draws, random_state : Laplace and the generative models, whose draws are made
            afresh (defaults 4000 and 0); NUTS uses its stored draws.

        Returns
        -------
        DataFrame indexed by (class, feature): ``kind``, ``estimate``,
        ``std_error``, ``ci_lower``, ``ci_upper``; binary models report
        P(``classes_[1]``). A point estimate adds the delta method's ``z`` and
        ``p_value``; posterior models give the posterior mean, sd and
        equal-tailed interval of the effect over the draws.
        """
        X = validate_predict_data(self, X)
        contrasts = column_contrasts(X, feature_names(self), features, discrete)
        return self._effect_table(contrasts, **kwargs)
