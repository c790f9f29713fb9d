"""The posterior protocol every Bayesian estimator shares: argument checks and DataTrees of draws.

Each Bayesian estimator (Laplace, NUTS, the conjugate generative models)
offers ``sample_posterior(draws, chains, random_state, X=None, y=None)`` from
its fitted state and ``loo(X, y, sample_weight=None)``; these helpers keep
their arguments, errors and outputs identical.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ..core.validation import check_count, feature_names, validate_scoring_data
from ..posterior.draws import DrawPredictor
from ._binomial import binomial_rows, check_trials

#: Largest array of draws a method may return (posterior plus log-likelihood).
MAX_RETURNED_BYTES = 2 * 1024**3


def check_draws(draws, chains) -> tuple[int, int]:
    """Validated ``draws`` and ``chains``; an array passed as ``draws`` gets a pointed message."""
    if not isinstance(draws, Integral) and np.ndim(draws) > 0:
        raise ValueError(
            "sample_posterior(draws, chains, random_state) draws from the fitted posterior; "
            "pass the data for the log-likelihood by keyword: X=..., y=...."
        )
    return check_count(draws, "draws"), check_count(chains, "chains")


def check_returned_size(n_draws: int, n_numbers_per_draw: int) -> None:
    needed = 8 * n_draws * n_numbers_per_draw
    if needed > MAX_RETURNED_BYTES:
        raise MemoryError(
            f"{n_draws} draws of {n_numbers_per_draw} numbers would need "
            f"{needed / 1024**3:.1f} GiB (limit {MAX_RETURNED_BYTES / 1024**3:.0f} GiB). Use "
            "fewer draws, or a subset of the rows for the log-likelihood."
        )


def draws_datatree(
    estimator,
    variables: dict,
    predictor: DrawPredictor,
    chains: int,
    X=None,
    y=None,
    attrs=None,
    trials=None,
):
    """DataTree of an estimator's draws, with the log-likelihood of (X, y) when given.

    Parameters
    ----------
    estimator : fitted estimator (classes, feature names)
    variables : dict of name -> (array (n_draws, ...), dims after chain and draw)
    predictor : DrawPredictor over the same draws
    chains : int
        The draws are reshaped to (chains, n_draws / chains).
    X, y : optional data whose pointwise log-likelihood is stored
    attrs : dict, optional
    trials : array-like, optional
        For a fit on binomial counts (``y`` the successes): one observation per
        group, :math:`\\log \\mathrm{Binomial}(s_g \\mid n_g, p_g)` (see
        :func:`binomial_log_likelihood`), so that ``arviz.loo`` leaves out a group.
    """
    from ..posterior.arviz_io import posterior_datatree

    if (X is None) != (y is None):
        raise ValueError("Pass X and y together (for the log-likelihood), or neither.")
    if X is not None:
        check_trials(estimator, trials)
    shape = (chains, predictor.n_draws // chains)
    variables = {
        name: (values.reshape(shape + values.shape[1:]), dims)
        for name, (values, dims) in variables.items()
    }
    names = feature_names(estimator)
    coords = {"feature": names, "feature_bis": names, "class": list(estimator.classes_)}
    if X is None:
        return posterior_datatree(variables, coords, attrs=attrs)
    if trials is None:
        X, codes, _ = validate_scoring_data(estimator, X, y)
        check_returned_size(predictor.n_draws, X.shape[0])
        log_likelihood = predictor.pointwise_log_likelihood(X, codes)
        observed = estimator.classes_[codes]
    else:
        check_returned_size(predictor.n_draws, 2 * len(X))
        log_likelihood, observed = binomial_log_likelihood(estimator, predictor, X, y, trials)
    return posterior_datatree(
        variables,
        coords,
        log_likelihood=log_likelihood.reshape(*shape, -1),
        observed=observed,
        attrs=attrs,
    )


def binomial_log_likelihood(estimator, predictor: DrawPredictor, X, successes, trials):
    r"""Per-group :math:`\log \mathrm{Binomial}(s_g \mid n_g, p_g^{(s)})` of every draw.

    Includes :math:`\log\binom{n_g}{s_g}`; unweighted, like every ``log_likelihood``
    group. Returns the (n_draws, G) values and the successes (the observed data).
    """
    rows, labels, _, groups = binomial_rows(X, successes, None, trials)
    rows, codes, _ = validate_scoring_data(estimator, rows, labels)
    return groups.grouped(predictor.pointwise_log_likelihood(rows, codes)), groups.successes
