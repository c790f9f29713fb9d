r"""PyMCLogisticRegression: the full posterior of the logistic model, sampled by NUTS.

The model and prior are those of :class:`~problogreg.MAPLogisticRegression`
(see :mod:`problogreg.models._pymc_model` for the PyMC formulation):

.. math::

    p(\phi \mid X, y) \propto \prod_i p(y_i \mid x_i, T\phi)^{s_i}
    \prod_j \mathcal N(\phi_j; 0, \sigma_j),

sampled with PyMC's NUTS. With ``init="laplace"`` every chain starts at a
draw from the Laplace approximation :math:`\mathcal N(\hat\phi, H^{-1})`
(:math:`\hat\phi` the MAP, :math:`H` the Hessian of the negative log-posterior
there), and NUTS uses :math:`H^{-1}` as a dense mass matrix, so that it
samples a nearly isotropic posterior from the first iteration and tuning only
has to adapt the step size.

Predictions average over the posterior draws :math:`\theta^{(s)}` in numpy
(:class:`~problogreg.posterior.draws.DrawPredictor`), for new data of any size
and without recompiling the model:

.. math::

    \bar p(y = k \mid x) = \frac1S \sum_s \operatorname{softmax}_k
    \left(b^{(s)} + W^{(s)} x\right).

PyMC and ArviZ are imported inside the methods that need them, so importing
this module is cheap.
"""

from __future__ import annotations

import sys
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..core.validation import (
    check_random_state,
    feature_names,
    validate_predict_data,
    validate_scoring_data,
)
from ..posterior.draws import DrawPredictor
from ..posterior.gaussian import laplace_posterior
from ..posterior.loo import psis_loo
from ._mode import mode_finder
from ._posterior_api import check_draws, draws_datatree
from ._pytensor_env import available_cpus, compile_mode, quiet_missing_blas
from ._sampling_diagnostics import SamplingWarning, diagnose, warn_if_unconverged
from .map import PRIOR_PARAMETER_CONSTRAINTS

__all__ = ["PyMCLogisticRegression", "SamplingWarning"]


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
    random_state : None, int or numpy Generator, default=None
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
    result_ : MAPResult
        The MAP fit the sampler started from (its Laplace Gaussian gives the
        starting points and the mass matrix).
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
    intercept_prior_scale_, data_fingerprint_ : as for MAPLogisticRegression.

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
        **PRIOR_PARAMETER_CONSTRAINTS,
        "draws": [Interval(Integral, 1, None, closed="left")],
        "tune": [Interval(Integral, 0, None, closed="left")],
        "chains": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"laplace", "pymc"})],
        "random_state": [
            None,
            Interval(Integral, 0, None, closed="left"),
            np.random.Generator,
            np.random.RandomState,
        ],
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
        # The MAP fit validates the data, resolves the prior, and refuses
        # improper posteriors (MLE on separable data) before any sampling.
        finder = mode_finder(self, X, y, sample_weight)
        result = finder.solve()
        self.result_ = result
        self.prior_scale_ = result.prior.coef_scale
        self.intercept_prior_scale_ = result.prior.intercept_scale
        rng = check_random_state(self.random_state)
        names = feature_names(self)
        free_draws, trace, model = self._sample(finder, names, rng)
        layout = result.layout
        theta = layout.to_likelihood(free_draws.reshape(-1, layout.n_free))
        self._intercept_draws, self._coef_draws = layout.class_rows(theta)
        likelihood = finder.objective.likelihood
        self.model_ = model
        self.idata_ = self._datatree(trace, names, likelihood.X, likelihood.y)
        intercept, coef = layout.estimator_rows(theta.mean(axis=0))
        self.intercept_, self.coef_ = intercept, coef
        self.diagnostics_ = diagnose(free_draws, trace.sample_stats)
        warn_if_unconverged(self.diagnostics_)
        return self

    def _sample(self, finder, names, rng):
        """Run NUTS; return the free draws (chain, draw, n_free), the trace and the model."""
        with quiet_missing_blas():
            import pymc as pm
            import pytensor

            from ._pymc_model import build_model

            model, free = build_model(finder.objective, names, self.classes_)
            # Every function PyMC compiles on the way (initial point, start
            # check, log-density and gradient, trace) uses the chosen backend.
            with pytensor.config.change_flags(mode=compile_mode()), model:
                sample_kwargs = self._start_kwargs(pm, model, free, rng)
                trace = pm.sample(
                    draws=self.draws,
                    tune=self.tune,
                    chains=self.chains,
                    cores=self.cores or min(self.chains, available_cpus()),
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
        return free_draws, trace, model

    def _start_kwargs(self, pm, model, free, rng) -> dict:
        """Keyword arguments of ``pm.sample`` that set the start and the sampler."""
        if self.init == "pymc" or self.result_.cholesky is None:
            # No Hessian (a model too large for a dense one): PyMC's adaptation.
            return {"nuts": {"target_accept": self.target_accept}}
        laplace = laplace_posterior(self.result_)
        # Each chain starts at a draw from the Laplace Gaussian, i.e. already in
        # (an approximation of) the typical set, with chains spread like the posterior.
        starts = laplace.sample(self.chains, rng)
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
            scaling=laplace.covariance(),
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

    # -- the draws --------------------------------------------------------------
    def _predictor(self) -> DrawPredictor:
        check_is_fitted(self)
        return DrawPredictor.linear(self._intercept_draws, self._coef_draws)

    def _datatree(self, trace, names, X, codes):
        """Posterior (in the package's names), sample_stats, log_likelihood, observed_data."""
        from ..posterior.arviz_io import coef_intercept_variables, posterior_datatree

        shape = (self.chains, self.draws)
        variables = coef_intercept_variables(
            self._intercept_draws.reshape(*shape, -1),
            self._coef_draws.reshape(*shape, *self._coef_draws.shape[1:]),
        )
        log_likelihood = self._predictor().pointwise_log_likelihood(X, codes)
        return posterior_datatree(
            variables,
            {"feature": names, "class": list(self.classes_)},
            log_likelihood=log_likelihood.reshape(*shape, -1),
            observed=self.classes_[codes],
            attrs=dict(trace.posterior.attrs),
            sample_stats=trace.sample_stats.to_dataset(),
        )

    def sample_posterior(self, draws=None, chains=None, random_state=None, X=None, y=None):
        """The NUTS draws as an ArviZ DataTree (the posterior protocol of every Bayesian model).

        Parameters
        ----------
        draws, chains : int or None
            Keep the first ``draws`` draws of the first ``chains`` chains (None: all
            that were sampled); MCMC draws cannot be made afresh without refitting.
        random_state : ignored
            Accepted for the common protocol: the draws already exist.
        X, y : optional
            Data whose pointwise log-likelihood is stored in ``log_likelihood``.

        Returns
        -------
        xarray.DataTree
        """
        from ..posterior.arviz_io import coef_intercept_variables

        check_is_fitted(self)
        draws, chains = check_draws(
            self.draws if draws is None else draws, self.chains if chains is None else chains
        )
        if draws > self.draws or chains > self.chains:
            raise ValueError(
                f"This fit holds {self.chains} chains x {self.draws} draws; asked for "
                f"{chains} x {draws}. Refit with more draws or chains."
            )
        keep = np.arange(self.chains * self.draws).reshape(self.chains, -1)[:chains, :draws]
        intercept, coef = self._intercept_draws[keep.ravel()], self._coef_draws[keep.ravel()]
        variables = coef_intercept_variables(intercept, coef)
        predictor = DrawPredictor.linear(intercept, coef)
        attrs = dict(self.idata_.posterior.attrs)
        return draws_datatree(self, variables, predictor, chains, X, y, attrs)

    def loo(self, X, y, sample_weight=None):
        """PSIS-LOO of the NUTS draws (see :func:`~problogreg.posterior.loo.psis_loo`).

        Parameters
        ----------
        X, y : the training data.
        sample_weight : array-like, optional
            The training weights (they weight each row's score and its removal).

        Returns
        -------
        LOOResult
            An ``arviz.ELPDDataLOO``, accepted by ``arviz.compare``.
        """
        check_is_fitted(self)
        X, codes, weights = validate_scoring_data(self, X, y, sample_weight)
        log_likelihood = self._predictor().pointwise_log_likelihood(X, codes)
        return psis_loo(
            log_likelihood,
            weights,
            r_eff=self._relative_efficiency(),
            method="PSIS-LOO of NUTS draws",
        )

    def _relative_efficiency(self) -> float:
        """Mean ESS per draw of the posterior variables, ArviZ's ``r_eff`` for PSIS-LOO."""
        import arviz as az

        if self.chains == 1:
            return 1.0
        ess = az.ess(self.idata_.posterior.to_dataset(), method="mean")
        values = np.hstack([ess[name].values.ravel() for name in ess.data_vars])
        return float(np.nanmean(values) / (self.chains * self.draws))

    # -- predictions from the draws -------------------------------------------
    def predict_log_proba(self, X):
        """Log of the posterior-mean class probabilities, shape (n_samples, n_classes)."""
        return self._predictor().mean_log_proba(validate_predict_data(self, X))

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
        return self._predictor().interval(validate_predict_data(self, X), prob)

    def sample_posterior_predictive(self, X, random_state=None):
        """Draw labels from the posterior predictive distribution at X.

        One label per posterior draw and row: :math:`\\tilde y^{(s)}_i \\sim
        \\operatorname{Categorical}(p(\\cdot \\mid x_i, \\theta^{(s)}))`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        random_state : None, int or numpy Generator, default=None

        Returns
        -------
        xarray.DataTree
            Group ``posterior_predictive`` with variable ``y`` (class labels),
            dims (chain, draw, obs_id).
        """
        import xarray as xr

        X = validate_predict_data(self, X)
        codes = self._predictor().sample_labels(X, check_random_state(random_state))
        labels = self.classes_[codes].reshape(self.chains, self.draws, -1)
        return xr.DataTree.from_dict(
            {
                "posterior_predictive": xr.Dataset(
                    {"y": (("chain", "draw", "obs_id"), labels)},
                    coords={
                        "chain": np.arange(self.chains),
                        "draw": np.arange(self.draws),
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
