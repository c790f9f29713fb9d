r"""PyMCLogisticRegression: the full posterior of the logistic model, sampled by NUTS.

The model and prior are those of :class:`~problogreg.MAPLogisticRegression`
(see :mod:`problogreg.models._pymc_model` for the PyMC formulation, ``model_``):

.. math::

    p(\phi \mid X, y) \propto \prod_i p(y_i \mid x_i, T\phi)^{s_i}
    \prod_j \mathcal N(\phi_j; 0, \sigma_j).

With ``init="laplace"`` (the default) the MAP fit gives the Laplace approximation
:math:`\mathcal N(\hat\phi, H^{-1})` (:math:`\hat\phi` the MAP, :math:`H = LL^\top` the
Hessian of the negative log-posterior there), and NUTS samples the whitened
coordinates :math:`z` of :math:`\phi = \hat\phi + L^{-\top} z`, in which the posterior
is nearly :math:`\mathcal N(0, I)`: every chain starts at a draw of that Gaussian and
tuning only has to adapt the step size (how long it tunes follows the Laplace fit's
quality, ``tune="auto"``). The draws are mapped back, so ``idata_`` holds
:math:`\theta`; the whitening is a change of coordinates by a constant linear map and
leaves the posterior unchanged.

The default engine is nutpie (the PyMC developers' Rust NUTS, chains as threads) on
the log density of :mod:`problogreg.models._whitened_density`, evaluated in numpy: no
compilation, so the first fit in a fresh process costs seconds. ``sampler="pymc"``
runs PyMC's own NUTS on ``model_`` (compiled by PyTensor) with the Laplace covariance
as its dense mass matrix, which is the same whitening.

Predictions average over the posterior draws :math:`\theta^{(s)}` in numpy
(:class:`~problogreg.posterior.draws.DrawPredictor`), for new data of any size
and without recompiling the model:

.. math::

    \bar p(y = k \mid x) = \frac1S \sum_s \operatorname{softmax}_k
    \left(b^{(s)} + W^{(s)} x\right).

PyMC, nutpie and ArviZ are imported inside the methods that need them, so importing
this module is cheap.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..core.likelihood import SoftmaxLikelihood
from ..core.objective import PosteriorObjective
from ..core.validation import (
    check_random_state,
    feature_names,
    validate_training_data,
)
from ..posterior.draws import DrawPredictor
from ..posterior.loo import psis_loo
from ._binomial import binomial_rows, check_trials
from ._draw_predictions import DrawPredictionMixin
from ._marginal_effects import MarginalEffectsMixin, draws_table
from ._mode import mode_finder
from ._nuts_loo import resolve_nuts_loo
from ._nuts_run import build_pymc_model, choose_tune, run_nuts
from ._posterior_api import check_draws, draws_datatree
from ._sampling_diagnostics import (
    SamplingWarning,
    diagnose,
    relative_efficiency,
    warn_if_unconverged,
)
from .map import PRIOR_PARAMETER_CONSTRAINTS

__all__ = ["PyMCLogisticRegression", "SamplingWarning"]


class PyMCLogisticRegression(
    MarginalEffectsMixin, DrawPredictionMixin, ClassifierMixin, BaseEstimator
):
    """Bayesian logistic regression sampled with NUTS (PyMC).

    Same model and Gaussian prior as :class:`~problogreg.MAPLogisticRegression`;
    the reference answer of the package for the posterior. (The Jeffreys prior
    of ``MAPLogisticRegression(prior="jeffreys")`` is not offered here: its log
    density needs a log-determinant of the Fisher information, and its gradient,
    at every leapfrog step.)

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
    tune : int or "auto", default="auto"
        Tuning iterations per chain (discarded). "auto" judges the whitening
        (the Pareto k of the Laplace Gaussian as an importance-sampling proposal
        for the exact posterior, from 4000 draws): 200 iterations when k < 0.5,
        500 when k < 0.7, else 1000. The convergence checks (R-hat, ESS,
        divergences) stay the same. Needs ``init="laplace"``; otherwise 1000.
    chains : int, default=4
    init : {"laplace", "pymc"}, default="laplace"
        "laplace": sample coordinates whitened by the Laplace approximation and
        start each chain at a draw from it (the step size, and with nutpie a
        diagonal correction of the mass matrix, are still adapted during tuning).
        "pymc": no whitening; chains start at jitter in (-1, 1) around zero and the
        engine adapts a diagonal mass matrix (PyMC's defaults).
    sampler : {"nutpie", "pymc"}, default="nutpie"
        The NUTS engine (see the module notes). Both sample the same posterior;
        on 2 cores nutpie was the faster in every measured shape (the benchmark
        ``benchmarks/bench_nuts.py``).
    random_state : None, int or numpy Generator, default=None
        Seeds the starting points and the sampler; an int makes fits reproducible.
    progressbar : bool or None, default=None
        None shows PyMC's progress bar only when stdout is an interactive terminal.
    cores : int or None, default=None
        Chains run at once (threads with nutpie, processes with PyMC). None: one
        with nutpie, whose chains would contend for Python's GIL, and the BLAS of each
        log-density evaluation uses every CPU instead (faster on 2 cores);
        ``min(chains, available CPUs)`` with PyMC. BLAS threads are limited for the
        run so that chains x BLAS threads never exceed the CPUs.
    target_accept : float, default=0.8
        NUTS's target acceptance rate; raise it (e.g. 0.95) if there are
        divergences: smaller steps, slower sampling.

    Attributes
    ----------
    result_ : MAPResult
        The MAP fit the sampler started from (its Laplace Gaussian gives the
        whitening and the starting points).
    idata_ : xarray.DataTree
        ``posterior`` (``coef``, ``intercept``; binary dims (chain, draw, feature)
        and (chain, draw); multiclass adds ``class``, with zeros for the
        reference class of the reference parametrisation), ``sample_stats``
        (ArviZ's names: ``diverging``, ``n_steps``, ``tree_depth``, ``step_size``,
        ``acceptance_rate``, ``energy``, ``lp``, ...; step sizes and ``lp`` refer to the
        sampled coordinates, whitened with ``init="laplace"``),
        ``log_likelihood`` (``y``: the pointwise log p(y_i | x_i, theta), dims
        (chain, draw, obs_id), unweighted; for binomial counts one observation per
        group, log Binomial(s_g | n_g, p_g) with the binomial coefficient, so that
        ``arviz.loo(idata_)`` leaves out a group), ``observed_data`` (``y``; the
        successes for binomial counts).
    model_ : pymc.Model
        The posterior as a PyMC model (in the free coordinates, not whitened):
        the density both engines sample.
    coef_, intercept_ : ndarray
        Posterior means, in the layout of MAPLogisticRegression.
    tune_ : int
        The tuning iterations used; ``laplace_pareto_k_`` the Pareto k behind an
        ``"auto"`` choice (NaN otherwise).
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
    >>> nuts = plr.PyMCLogisticRegression(draws=300, tune=200, chains=2, random_state=0,
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
        "tune": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "chains": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"laplace", "pymc"})],
        "sampler": [StrOptions({"nutpie", "pymc"})],
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
        tune="auto",
        chains=4,
        init="laplace",
        sampler="nutpie",
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
        self.sampler = sampler
        self.random_state = random_state
        self.progressbar = progressbar
        self.cores = cores
        self.target_accept = target_accept

    # -- fitting -------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, trials=None):
        """Sample the posterior with NUTS.

        Parameters
        ----------
        X, y : the training data, as for :meth:`MAPLogisticRegression.fit`.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights multiplying each row's log-likelihood.
        trials : array-like of shape (n_samples,), optional
            Binomial counts (``y`` the successes), as for the MAP fit: the
            likelihood is that of each group's successes and failures as two
            weighted rows, which is the binomial likelihood up to a constant.

        Returns
        -------
        self

        Warns
        -----
        SamplingWarning
            When R-hat > 1.01, bulk ESS < 400 or there were divergences.
        """
        self._validate_params()
        X, y, sample_weight, groups = binomial_rows(X, y, sample_weight, trials)
        self.binomial_ = trials is not None
        if self.tune == 0 and self.sampler == "nutpie":
            raise ValueError(
                "tune=0 needs sampler='pymc': nutpie adapts its step size in at least one "
                "tuning iteration. Use tune>=1, or sampler='pymc' to sample untuned."
            )
        # The MAP fit validates the data, resolves the prior, and refuses
        # improper posteriors (MLE on separable data) before any sampling.
        finder = mode_finder(self, X, y, sample_weight)
        result = finder.solve()
        if result.needs_hessian:  # the whitening and the tuning check need it
            result = finder.complete_hessian(result)
        self.result_ = result
        self.prior_scale_ = result.prior.coef_scale
        self.intercept_prior_scale_ = result.prior.intercept_scale
        rng = check_random_state(self.random_state)
        self.tune_, self.laplace_pareto_k_ = choose_tune(self, finder, result, rng)
        names = feature_names(self)
        run = run_nuts(self, finder, result, names, rng)
        layout = result.layout
        theta = layout.to_likelihood(run.free_draws.reshape(-1, layout.n_free))
        self._intercept_draws, self._coef_draws = layout.class_rows(theta)
        likelihood = finder.objective.likelihood
        self._training_data = (likelihood.X, likelihood.y, likelihood.sample_weight)
        self._pymc_model = run.model
        self.idata_ = self._datatree(run, names, likelihood.X, likelihood.y, groups)
        intercept, coef = layout.estimator_rows(theta.mean(axis=0))
        self.intercept_, self.coef_ = intercept, coef
        self.diagnostics_ = diagnose(run.free_draws, run.sample_stats)
        warn_if_unconverged(self.diagnostics_)
        return self

    @property
    def model_(self):
        """The posterior as a ``pymc.Model`` (see :mod:`problogreg.models._pymc_model`).

        The nutpie engine samples without it, so it is built on first access: a fit
        does not pay PyMC's import unless the model is asked for.
        """
        check_is_fitted(self)
        if self._pymc_model is None:
            X, codes, weights = self._training_data
            likelihood = SoftmaxLikelihood(
                X, codes, weights, len(self.classes_), reference=self.result_.layout.reference
            )
            objective = PosteriorObjective(likelihood, self.result_.prior)
            self._pymc_model = build_pymc_model(objective, feature_names(self), self.classes_)[0]
        return self._pymc_model

    # -- pickling -------------------------------------------------------------
    def __getstate__(self):
        # A pm.Model holds closures that the standard pickle cannot serialise;
        # cloudpickle (a PyMC dependency) can.
        state = super().__getstate__()
        if state.get("_pymc_model") is not None:
            import cloudpickle

            state = {**state, "_pymc_model": cloudpickle.dumps(state["_pymc_model"])}
        return state

    def __setstate__(self, state):
        if isinstance(state.get("_pymc_model"), bytes):
            import cloudpickle

            state = {**state, "_pymc_model": cloudpickle.loads(state["_pymc_model"])}
        super().__setstate__(state)

    # -- the draws --------------------------------------------------------------
    def _predictor(self) -> DrawPredictor:
        check_is_fitted(self)
        return DrawPredictor.linear(self._intercept_draws, self._coef_draws)

    def _datatree(self, run, names, X, codes, groups=None):
        """Posterior (in the package's names), sample_stats, log_likelihood, observed_data;
        binomial ``groups`` give one observation per group (its successes)."""
        from ..posterior.arviz_io import coef_intercept_variables, posterior_datatree

        shape = (self.chains, self.draws)
        variables = coef_intercept_variables(
            self._intercept_draws.reshape(*shape, -1),
            self._coef_draws.reshape(*shape, *self._coef_draws.shape[1:]),
        )
        log_likelihood = self._predictor().pointwise_log_likelihood(X, codes)
        observed = self.classes_[codes]
        if groups is not None:
            log_likelihood, observed = groups.grouped(log_likelihood), groups.successes
        return posterior_datatree(
            variables,
            {"feature": names, "class": list(self.classes_)},
            log_likelihood=log_likelihood.reshape(*shape, -1),
            observed=observed,
            attrs=run.attrs,
            sample_stats=run.sample_stats,
        )

    def sample_posterior(
        self, draws=None, chains=None, random_state=None, X=None, y=None, trials=None
    ):
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
        trials : array-like, optional
            For a fit on binomial counts (``y`` the successes): the log-likelihood is
            per group, :math:`\\log \\mathrm{Binomial}(s_g \\mid n_g, p_g)`.

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
        return draws_datatree(self, variables, predictor, chains, X, y, attrs, trials)

    def loo(self, X, y, sample_weight=None, trials=None, random_state=0, resolve=True):
        """PSIS-LOO of the NUTS draws (see :func:`~problogreg.posterior.loo.psis_loo`),
        with rows of high Pareto k refitted (see :mod:`problogreg.models._nuts_loo`).

        Parameters
        ----------
        X, y : the training data.
        sample_weight : array-like, optional
            The training weights (they weight each row's score and its removal).
        trials : array-like, optional
            For a fit on binomial counts: a group is left out whole.
        random_state : None, int or numpy Generator, default=0
            Seeds the refits' draws.
        resolve : bool, default=True
            False: plain PSIS-LOO, whatever its Pareto k. With ``trials`` (binomial
            groups, left out whole) the estimate is plain PSIS-LOO: refits of groups
            are not implemented.

        Returns
        -------
        LOOResult (an ``arviz.ELPDDataLOO``), with ``r_eff`` from the draws' ESS.
        """
        check_trials(self, trials)
        X, y, sample_weight, groups = binomial_rows(X, y, sample_weight, trials)
        X, codes, weights = validate_training_data(self, X, y, sample_weight)
        log_likelihood = self._predictor().pointwise_log_likelihood(X, codes)
        if groups is not None:
            log_likelihood, weights = groups.grouped(log_likelihood), groups.weights
        loo = psis_loo(
            log_likelihood,
            weights,
            r_eff=relative_efficiency(self.idata_.posterior.to_dataset()),
            method="PSIS-LOO of NUTS draws",
        )
        if not resolve or groups is not None:
            # Refits leave out rows; binomial groups are left out whole, not refitted yet.
            return loo
        return resolve_nuts_loo(self, loo, X, codes, weights, random_state)

    def summary(self, exponentiate=False, **kwargs):
        """ArviZ summary of ``coef`` and ``intercept``: mean, sd, interval, ESS, R-hat.

        Keyword arguments go to ``arviz.summary`` (e.g. ``ci_prob=0.94``).
        The zero rows of a reference class are left out. With ``exponentiate=True``
        the draws are exponentiated first: the posterior of each odds ratio (its
        mean, sd and interval are those of the exp of the draws, not exp of the
        log-scale summaries).
        """
        import arviz as az

        check_is_fitted(self)
        if self.multiclass_ == "reference":
            kwargs.setdefault("coords", {"class": list(self.classes_[1:])})
        data = self.idata_
        if exponentiate:
            data = np.exp(data.posterior.to_dataset()[["coef", "intercept"]])
        return az.summary(data, var_names=["coef", "intercept"], **kwargs)

    def odds_ratios(self, **kwargs):
        """``summary(exponentiate=True)``: the posterior of every odds ratio."""
        return self.summary(exponentiate=True, **kwargs)

    def _effect_table(self, contrasts, ci_prob=0.95):
        """Marginal effects over the stored NUTS draws."""
        return draws_table(self._predictor(), self.classes_, contrasts, ci_prob)
