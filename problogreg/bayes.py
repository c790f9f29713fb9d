r"""PyMCLogisticRegression: the full posterior of the logistic model, sampled by NUTS.

The model and prior are those of :class:`~problogreg.map.MAPLogisticRegression`
(see :mod:`problogreg._pymc_model` for the PyMC formulation):

.. math::

    p(\phi \mid X, y) \propto \prod_i p(y_i \mid x_i, T\phi)^{s_i}
    \prod_j \mathcal N(\phi_j; 0, \sigma_j),

sampled with PyMC's NUTS. With ``init="laplace"`` every chain starts at a
draw from the Laplace approximation :math:`\mathcal N(\hat\phi, H^{-1})`
(:math:`\hat\phi` the MAP, :math:`H` the Hessian of the negative log-posterior
there), and NUTS uses :math:`H^{-1}` as a dense mass matrix, so that it
samples a nearly isotropic posterior from the first iteration and tuning only
has to adapt the step size.

Predictions average over the posterior draws :math:`\theta^{(s)}`, in numpy,
for new data of any size and without recompiling the model:

.. math::

    \bar p(y = k \mid x) = \frac1S \sum_s \operatorname{softmax}_k
    \left(b^{(s)} + W^{(s)} x\right).

PyMC and ArviZ are imported inside the methods that need them, so importing
this module is cheap.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._validation import validate_predict_data
from .likelihood import log_proba_from_logits
from .map import _PRIOR_PARAMETER_CONSTRAINTS, MAPFit, MAPLogisticRegression
from .objective import PosteriorObjective

#: Convergence thresholds of the post-fit diagnostics (Vehtari et al. 2021).
MAX_R_HAT = 1.01
MIN_BULK_ESS = 400

#: Largest number of floats held at once in per-draw class probabilities.
BLOCK_FLOATS = 2**22


class SamplingWarning(UserWarning):
    """The NUTS run shows signs of not having converged."""


def _available_cpus() -> int:
    """CPUs this process may run on (respecting its affinity mask)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextmanager
def _quiet_missing_blas():
    """Silence PyTensor's notices that it found no BLAS library to link to.

    Pip-installed PyTensor has none: its C backend then calls numpy's BLAS,
    which is what we want, yet it warns at import and logs at every compile.
    """
    blas_logger = logging.getLogger("pytensor.tensor.blas")
    blas_logger.addFilter(_not_numpy_blas_notice)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*could not link to a BLAS")
            yield
    finally:
        blas_logger.removeFilter(_not_numpy_blas_notice)


def _not_numpy_blas_notice(record: logging.LogRecord) -> bool:
    return "NumPy C-API based implementation for BLAS" not in record.getMessage()


def _compile_mode() -> str:
    """PyTensor's C backend where a C++ compiler exists, numba otherwise.

    Measured on 2 cores (n=5000, d=20, cold cache): the C backend compiled the
    log-density and gradient in 7.5 s, once, before sampling; numba compiled
    lazily in every forked sampler process and added ~13 s to sampling. Warm,
    both load in under a second and evaluate about equally fast.
    """
    import pytensor

    return "CVM" if pytensor.config.cxx else "NUMBA"


class PyMCLogisticRegression(ClassifierMixin, BaseEstimator):
    """Bayesian logistic regression sampled with NUTS (PyMC).

    Same model and prior as :class:`~problogreg.MAPLogisticRegression`; the
    reference answer of the package for the posterior.

    Parameters
    ----------
    prior_scale : float, array of shape (n_features,) or None, default=2.5
        Standard deviation of the Normal(0, s) prior on each coefficient; None
        (or ``inf`` entries) is a flat prior.
    intercept_prior_scale : float or None, default=10.0
        Standard deviation of the Normal(0, s) prior on each intercept; None is flat.
    autoscale : bool, default=True
        Use ``prior_scale / std(x_j)`` for coefficient j.
    multiclass : {"auto", "symmetric", "reference"}, default="auto"
        As for MAPLogisticRegression. Symmetric intercepts sum to zero when
        their prior is flat.
    draws : int, default=1000
        Posterior draws kept per chain.
    tune : int, default=1000
        Tuning iterations per chain (discarded).
    chains : int, default=4
    init : {"laplace", "pymc"}, default="laplace"
        "laplace": start each chain at a draw from the Laplace approximation
        and use its covariance as a dense mass matrix (the step size is still
        adapted during tuning). "pymc": PyMC's defaults (jitter around the
        prior's initial point, diagonal mass-matrix adaptation).
    random_state : int, RandomState instance or None, default=None
        Seeds the starting points and the sampler; an int makes fits reproducible.
    progressbar : bool or None, default=None
        None shows PyMC's progress bar only when stdout is an interactive terminal.
    cores : int or None, default=None
        Chains run in parallel processes; None uses ``min(chains, available CPUs)``.
    target_accept : float, default=0.8
        NUTS's target acceptance rate; raise it (e.g. 0.95) if there are
        divergences: smaller steps, slower sampling.

    Attributes
    ----------
    idata_ : xarray.DataTree
        ``posterior`` (``coef``, ``intercept``; binary dims (chain, draw, feature)
        and (chain, draw); multiclass adds ``class``, with zeros for the
        reference class of the reference parametrisation), ``sample_stats``,
        ``log_likelihood`` (``y``: the pointwise log p(y_i | x_i, theta), dims
        (chain, draw, obs_id), unweighted), ``observed_data`` (``y``).
    model_ : pymc.Model
    coef_, intercept_ : ndarray
        Posterior means, in the layout of MAPLogisticRegression.
    diagnostics_ : dict
        ``max_r_hat``, ``min_ess_bulk`` (over the sampled parameters) and
        ``n_divergent``.
    classes_, n_features_in_, feature_names_in_, multiclass_, prior_scale_,
    intercept_prior_scale_ : as for MAPLogisticRegression.

    Notes
    -----
    Sample weights multiply each observation's log-likelihood,
    :math:`\\sum_i s_i \\log p(y_i \\mid x_i, \\theta)` (a ``pm.Potential`` in
    ``model_``): an integer weight acts as that many copies of the row.

    Examples
    --------
    >>> import problogreg as plr
    >>> X, y = plr.datasets.load("challenger")
    >>> nuts = plr.PyMCLogisticRegression(draws=200, tune=200, chains=2, random_state=0,
    ...                                   progressbar=False).fit(X, y)
    >>> nuts.idata_.posterior["coef"].dims
    ('chain', 'draw', 'feature')
    >>> lower, upper = nuts.predict_interval(X.iloc[:3], prob=0.9)
    >>> bool((lower <= nuts.predict_proba(X.iloc[:3])).all())
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        **_PRIOR_PARAMETER_CONSTRAINTS,
        "draws": [Interval(Integral, 1, None, closed="left")],
        "tune": [Interval(Integral, 0, None, closed="left")],
        "chains": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"laplace", "pymc"})],
        "random_state": ["random_state"],
        "progressbar": ["boolean", None],
        "cores": [Interval(Integral, 1, None, closed="left"), None],
        "target_accept": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        prior_scale=2.5,
        intercept_prior_scale=10.0,
        autoscale=True,
        multiclass="auto",
        draws=1000,
        tune=1000,
        chains=4,
        init="laplace",
        random_state=None,
        progressbar=None,
        cores=None,
        target_accept=0.8,
    ):
        self.prior_scale = prior_scale
        self.intercept_prior_scale = intercept_prior_scale
        self.autoscale = autoscale
        self.multiclass = multiclass
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.init = init
        self.random_state = random_state
        self.progressbar = progressbar
        self.cores = cores
        self.target_accept = target_accept

    # -- fitting -------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Sample the posterior with NUTS.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights multiplying each row's log-likelihood.

        Returns
        -------
        self

        Warns
        -----
        SamplingWarning
            When R-hat > 1.01, bulk ESS < 400 or there were divergences.
        """
        self._validate_params()
        map_estimator = MAPLogisticRegression(
            prior_scale=self.prior_scale,
            intercept_prior_scale=self.intercept_prior_scale,
            autoscale=self.autoscale,
            multiclass=self.multiclass,
        )
        # The MAP fit validates the data, resolves the prior, and refuses
        # improper posteriors (MLE on separable data) before any sampling.
        map_fit = map_estimator._fit_map(X, y, sample_weight)
        self._copy_data_attributes(map_estimator, map_fit)
        feature_names = map_estimator._feature_names()
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        rng = np.random.default_rng(seed)

        with _quiet_missing_blas():
            import pymc as pm
            import pytensor

            from ._pymc_model import build_model

            model, free = build_model(map_fit.objective, feature_names, self.classes_)
            # Every function PyMC compiles on the way (initial point, start
            # check, log-density and gradient, trace) uses the chosen backend.
            with pytensor.config.change_flags(mode=_compile_mode()), model:
                sample_kwargs = self._start_kwargs(pm, model, free, map_fit, rng)
                trace = pm.sample(
                    draws=self.draws,
                    tune=self.tune,
                    chains=self.chains,
                    cores=self.cores or min(self.chains, _available_cpus()),
                    random_seed=rng.integers(np.iinfo(np.int32).max),
                    var_names=[variable.name for variable in free],
                    progressbar=self._show_progress(),
                    quiet=not self._show_progress(),
                    compute_convergence_checks=False,
                    **sample_kwargs,
                )

        free_draws = np.concatenate(
            [
                trace.posterior[variable.name].values.reshape(self.chains, self.draws, -1)
                for variable in free
            ],
            axis=-1,
        )
        self._intercept_draws, self._coef_draws = _class_rows(map_fit.objective, free_draws)
        self.model_ = model
        self.idata_ = self._build_datatree(trace, map_fit, feature_names)
        self.intercept_, self.coef_ = self._posterior_mean_layout()
        self.diagnostics_ = _diagnose(free_draws, trace.sample_stats)
        _warn_if_unconverged(self.diagnostics_)
        return self

    def _copy_data_attributes(self, map_estimator: MAPLogisticRegression, map_fit: MAPFit):
        self.classes_ = map_estimator.classes_
        self.n_features_in_ = map_estimator.n_features_in_
        if hasattr(map_estimator, "feature_names_in_"):
            self.feature_names_in_ = map_estimator.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.multiclass_ = map_estimator.multiclass_
        self.prior_scale_ = map_fit.prior.coef_scale
        self.intercept_prior_scale_ = map_fit.prior.intercept_scale

    def _start_kwargs(self, pm, model, free, map_fit: MAPFit, rng) -> dict:
        """Keyword arguments of ``pm.sample`` that set the start and the sampler."""
        if self.init == "pymc" or map_fit.cholesky is None:
            # No Hessian (a model too large for a dense one): PyMC's adaptation.
            return {"nuts": {"target_accept": self.target_accept}}
        cholesky = map_fit.cholesky
        covariance = linalg.cho_solve((cholesky, True), np.eye(len(map_fit.params)))
        # x = L^{-T} z with z ~ N(0, I) has covariance (L L^T)^{-1} = H^{-1}: each
        # chain starts at a draw from the Laplace Gaussian, i.e. already in (an
        # approximation of) the typical set, with chains spread like the posterior.
        noise = rng.standard_normal((self.chains, len(map_fit.params)))
        starts = (
            map_fit.params + linalg.solve_triangular(cholesky, noise.T, lower=True, trans="T").T
        )
        initial = model.initial_point()
        sizes = np.cumsum([initial[variable.name].size for variable in free])[:-1]
        initvals = [
            {
                variable.name: block.reshape(initial[variable.name].shape)
                for variable, block in zip(free, np.split(start, sizes), strict=True)
            }
            for start in starts
        ]
        step = pm.NUTS(
            vars=free,
            scaling=covariance,
            is_cov=True,
            target_accept=self.target_accept,
        )
        return {"step": step, "initvals": initvals}

    def _show_progress(self) -> bool:
        if self.progressbar is None:
            return sys.stdout.isatty()
        return bool(self.progressbar)

    # -- pickling -------------------------------------------------------------
    def __getstate__(self):
        # A pm.Model holds closures that the standard pickle cannot serialise;
        # cloudpickle (a PyMC dependency) can.
        state = super().__getstate__()
        if "model_" in state:
            import cloudpickle

            state = {**state, "model_": cloudpickle.dumps(state["model_"])}
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), bytes):
            import cloudpickle

            state = {**state, "model_": cloudpickle.loads(state["model_"])}
        super().__setstate__(state)

    # -- the DataTree ---------------------------------------------------------
    def _build_datatree(self, trace, map_fit: MAPFit, feature_names: list[str]):
        """Posterior, sample_stats, log_likelihood and observed_data in DESIGN.md's names."""
        import xarray as xr

        binary = len(self.classes_) == 2
        sample = (self.chains, self.draws)
        if binary:
            posterior = {
                "coef": (("chain", "draw", "feature"), self._coef_draws[:, 1].reshape(*sample, -1)),
                "intercept": (("chain", "draw"), self._intercept_draws[:, 1].reshape(sample)),
            }
        else:
            n_classes = len(self.classes_)
            posterior = {
                "coef": (
                    ("chain", "draw", "class", "feature"),
                    self._coef_draws.reshape(*sample, n_classes, -1),
                ),
                "intercept": (
                    ("chain", "draw", "class"),
                    self._intercept_draws.reshape(*sample, n_classes),
                ),
            }
        draw_coords = {"chain": np.arange(self.chains), "draw": np.arange(self.draws)}
        coords = {**draw_coords, "feature": feature_names}
        if not binary:
            coords["class"] = list(self.classes_)
        data = map_fit.data
        log_likelihood = self._pointwise_log_likelihood(data.X, data.y).reshape(*sample, -1)
        obs_id = np.arange(len(data.y))
        return xr.DataTree.from_dict(
            {
                "posterior": xr.Dataset(posterior, coords=coords, attrs=trace.posterior.attrs),
                "sample_stats": trace.sample_stats.to_dataset(),
                "log_likelihood": xr.Dataset(
                    {"y": (("chain", "draw", "obs_id"), log_likelihood)},
                    coords={**draw_coords, "obs_id": obs_id},
                ),
                "observed_data": xr.Dataset(
                    {"y": (("obs_id",), self.classes_[data.y])}, coords={"obs_id": obs_id}
                ),
            }
        )

    def _posterior_mean_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means of the intercepts and coefficients as MAP stores them."""
        intercept = self._intercept_draws.mean(axis=0)
        coef = self._coef_draws.mean(axis=0)
        if len(self.classes_) == 2:
            return intercept[1:], coef[1:]
        return intercept, coef

    # -- predictions from the draws -------------------------------------------
    def _log_proba_blocks(self, X: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        """Per-draw class log-probabilities, (n_classes, n_draws, block), by row blocks.

        Classes come first so that reductions over them combine contiguous slabs.
        """
        n_draws, n_classes = self._intercept_draws.shape
        rows = max(1, BLOCK_FLOATS // (n_draws * n_classes))
        # One BLAS product per block: (classes * draws, d) @ (d, rows).
        coef = np.swapaxes(self._coef_draws, 0, 1).reshape(n_classes * n_draws, -1)
        intercept = self._intercept_draws.T[:, :, None]
        for start in range(0, X.shape[0], rows):
            block = slice(start, start + rows)
            logits = (coef @ X[block].T).reshape(n_classes, n_draws, -1) + intercept
            yield block, log_proba_from_logits(logits, axis=0)

    def _pointwise_log_likelihood(self, X: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """log p(y_i | x_i, theta_s), shape (n_draws, n_samples)."""
        out = np.empty((self._intercept_draws.shape[0], X.shape[0]))
        for block, log_proba in self._log_proba_blocks(X):
            out[:, block] = log_proba[codes[block], :, np.arange(log_proba.shape[2])].T
        return out

    def predict_log_proba(self, X):
        """Log of the posterior-mean class probabilities, shape (n_samples, n_classes)."""
        X = validate_predict_data(self, X)
        n_draws = self._intercept_draws.shape[0]
        out = np.empty((X.shape[0], len(self.classes_)))
        for block, log_proba in self._log_proba_blocks(X):
            out[block] = (_log_sum_exp(log_proba, axis=1)[:, 0] - np.log(n_draws)).T
        return out

    def predict_proba(self, X):
        """Posterior-mean class probabilities, shape (n_samples, n_classes)."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Class with the highest posterior-mean probability."""
        best = np.argmax(self.predict_log_proba(X), axis=1)
        return self.classes_[best]

    def predict_interval(self, X, prob=0.94):
        """Equal-tailed posterior interval of each class probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        prob : float in (0, 1), default=0.94

        Returns
        -------
        lower, upper : ndarray of shape (n_samples, n_classes)
            The ``(1 - prob) / 2`` and ``(1 + prob) / 2`` quantiles of
            :math:`p(y = k \\mid x, \\theta)` over the posterior draws.
        """
        if not 0 < prob < 1:
            raise ValueError(f"prob must be in (0, 1); got {prob!r}.")
        X = validate_predict_data(self, X)
        lower = np.empty((X.shape[0], len(self.classes_)))
        upper = np.empty_like(lower)
        tails = [(1 - prob) / 2, (1 + prob) / 2]
        for block, log_proba in self._log_proba_blocks(X):
            bounds = np.quantile(np.exp(log_proba), tails, axis=1)
            lower[block], upper[block] = bounds[0].T, bounds[1].T
        return lower, upper

    def sample_posterior_predictive(self, X, random_state=None):
        """Draw labels from the posterior predictive distribution at X.

        One label per posterior draw and row: :math:`\\tilde y^{(s)}_i \\sim
        \\operatorname{Categorical}(p(\\cdot \\mid x_i, \\theta^{(s)}))`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        xarray.DataTree
            Group ``posterior_predictive`` with variable ``y`` (class labels),
            dims (chain, draw, obs_id).
        """
        import xarray as xr

        X = validate_predict_data(self, X)
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        rng = np.random.default_rng(seed)
        codes = np.empty((self._intercept_draws.shape[0], X.shape[0]), dtype=np.intp)
        for block, log_proba in self._log_proba_blocks(X):
            cumulative = np.cumsum(np.exp(log_proba), axis=0)[:-1]
            uniform = rng.random(log_proba.shape[1:])
            # Inverse CDF: the label index is the number of cumulative probabilities below u.
            codes[:, block] = np.sum(cumulative < uniform, axis=0)
        sizes = self.idata_.posterior.sizes
        n_chains, n_draws = sizes["chain"], sizes["draw"]
        labels = self.classes_[codes].reshape(n_chains, n_draws, -1)
        return xr.DataTree.from_dict(
            {
                "posterior_predictive": xr.Dataset(
                    {"y": (("chain", "draw", "obs_id"), labels)},
                    coords={
                        "chain": np.arange(n_chains),
                        "draw": np.arange(n_draws),
                        "obs_id": np.arange(X.shape[0]),
                    },
                )
            }
        )

    def summary(self, **kwargs):
        """ArviZ summary of ``coef`` and ``intercept``: mean, sd, interval, ESS, R-hat.

        Keyword arguments go to ``arviz.summary`` (e.g. ``ci_prob=0.94``).
        The zero rows of a reference class are left out.
        """
        import arviz as az

        check_is_fitted(self)
        if self.multiclass_ == "reference":
            kwargs.setdefault("coords", {"class": list(self.classes_[1:])})
        return az.summary(self.idata_, var_names=["coef", "intercept"], **kwargs)


def _log_sum_exp(values: np.ndarray, axis: int) -> np.ndarray:
    """:math:`\\log \\sum \\exp` along ``axis`` (kept, size 1), shifted by the maximum.

    Plain numpy: several times faster than ``scipy.special.logsumexp`` on the
    (draws x rows x classes) blocks here, which is most of the cost of the
    pointwise log-likelihood of a large data set.
    """
    top = values.max(axis=axis, keepdims=True)
    return top + np.log(np.exp(values - top).sum(axis=axis, keepdims=True))


def _class_rows(objective: PosteriorObjective, free_draws: np.ndarray):
    """Free draws (chain, draw, n_free) -> intercepts (S, K) and coefficients (S, K, d).

    Every class gets a row; the reference class (binary: ``classes_[0]``) is all zeros.
    """
    likelihood = objective.likelihood
    n_rows, n_features = likelihood.n_rows, likelihood.n_features
    theta = free_draws.reshape(-1, free_draws.shape[-1]) @ objective.jacobian().T
    intercept = theta[:, :n_rows]
    coef = theta[:, n_rows:].reshape(-1, n_rows, n_features)
    if likelihood.reference:
        intercept = np.concatenate([np.zeros((len(theta), 1)), intercept], axis=1)
        coef = np.concatenate([np.zeros((len(theta), 1, n_features)), coef], axis=1)
    return intercept, coef


def _diagnose(free_draws: np.ndarray, sample_stats) -> dict:
    """R-hat and bulk ESS over the sampled parameters, and the number of divergences."""
    import arviz as az
    import xarray as xr

    draws = xr.DataArray(free_draws, dims=("chain", "draw", "parameter"))
    # A stuck chain has zero variance: R-hat is then NaN, which counts as a failure.
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "max_r_hat": float(az.rhat(draws).max(skipna=False)),
            "min_ess_bulk": float(az.ess(draws, method="bulk").min(skipna=False)),
            "n_divergent": int(sample_stats["diverging"].sum()),
        }


def _warn_if_unconverged(diagnostics: dict) -> None:
    """One SamplingWarning listing every failed check with its remedy."""
    problems = []
    if not diagnostics["max_r_hat"] <= MAX_R_HAT:
        problems.append(
            f"max R-hat {diagnostics['max_r_hat']:.3f} > {MAX_R_HAT} (chains disagree): "
            "increase tune and draws"
        )
    if not diagnostics["min_ess_bulk"] >= MIN_BULK_ESS:
        problems.append(
            f"min bulk ESS {diagnostics['min_ess_bulk']:.0f} < {MIN_BULK_ESS}: increase "
            "draws (or chains)"
        )
    if diagnostics["n_divergent"] > 0:
        problems.append(
            f"{diagnostics['n_divergent']} divergent transitions (the sampler skipped part "
            "of the posterior): raise target_accept (e.g. 0.95) and tune, or use a "
            "tighter prior (smaller prior_scale)"
        )
    if problems:
        warnings.warn(
            "NUTS may not have converged; do not trust these draws yet. "
            + "; ".join(problems)
            + ". Inspect with summary().",
            SamplingWarning,
            stacklevel=3,
        )
