"""From validated data to a :class:`~problogreg.core.result.MAPResult`, with actionable errors.

The steps every estimator built on the logistic model shares: choose the
multiclass parametrisation, build the objective, run the solver, and turn the
solver's failures (a flat direction, a separable data set) into messages that
name classes and features.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning

from ..core.blocked import SAMPLE_HESSIAN_STEPS, BlockedLikelihood
from ..core.blocked_data import (
    SAMPLE_MIN_ROWS,
    BlockedFitData,
    is_dask_collection,
    validate_blocked_fit_data,
)
from ..core.hessian_form import (
    ALL_CORES_MIN_OPERATIONS,
    exact_hessian_choice,
    exact_hessian_form,
)
from ..core.likelihood import SoftmaxLikelihood
from ..core.minimize import minimize, solver_blas_threads, warn_not_converged
from ..core.newton import SingularHessianError, cholesky_or_explain
from ..core.numerics import weighted_mean_variance
from ..core.objective import PosteriorObjective
from ..core.priors import ResolvedPrior, log_normal_density, resolve_prior
from ..core.result import MAPResult
from ..core.separation import MAX_LP_ENTRIES, find_separation, separation_check_fits
from ..core.validation import FitData, format_label, names_of_features, validate_fit_data

#: Newton iterations allowed for the warm start of a fit of Dask data (a fit to a sample
#: of its rows); one that needs more (e.g. a separable sample) is not used.
SAMPLE_FIT_MAX_ITER = 30

#: A fitted probability of the observed class this close to 1 makes an MLE suspect.
SEPARATION_SUSPICION = 1e-7
#: Data in Dask blocks are checked for separation on a random sample of at most
#: this many rows, from the rows drawn in the validation pass (a subset of separable
#: data is separable, so a sample that is not separable proves that the full data are
#: not).
SEPARATION_SAMPLE_ROWS = SAMPLE_MIN_ROWS


NOT_SEPARABLE = (
    "The exact check finds no separation, so the maximum-likelihood estimate "
    "is finite, but it is extreme: its standard errors and Wald tests are "
    "unreliable."
)
UNCHECKED = (
    "The data are too large for the exact separation check, so the classes may "
    "be separable: then the maximum-likelihood estimate is infinite and these "
    "coefficients are meaningless."
)

#: A fitted probability of the observed class above 1 - 10 eps is "numerically 1",
#: the threshold of R's glm (a linear predictor beyond about 33.7 in absolute value).
EXTREME_LOG_PROBABILITY = float(np.log1p(-10 * np.finfo(float).eps))


class SeparationError(ValueError):
    """The maximum-likelihood estimate does not exist: the classes are separable."""


class SeparationWarning(ConvergenceWarning):
    """A maximum-likelihood fit with fitted probabilities numerically 0 or 1."""


def resolve_multiclass(multiclass: str, n_classes: int, prior: ResolvedPrior) -> str:
    """The parametrisation actually used: "binary", "symmetric" or "reference"."""
    if n_classes == 2:
        return "binary"
    if prior.jeffreys and multiclass == "symmetric":
        raise ValueError(
            "prior='jeffreys' needs multiclass='reference' (or 'auto'): the symmetric "
            "model's Fisher information is singular, so its Jeffreys prior is zero."
        )
    if multiclass == "auto":
        return "symmetric" if prior.coef_is_proper else "reference"
    if multiclass == "symmetric" and not prior.coef_is_proper:
        raise ValueError(
            "multiclass='symmetric' needs a proper coefficient prior: with a flat "
            "prior the K coefficient rows are only identified up to a common shift. "
            "Set prior_scale to a number, or use multiclass='reference' (the MLE "
            "convention of statsmodels MNLogit and R's multinom)."
        )
    return multiclass


def blocked_solver(solver: str, objective) -> str:
    """The solver for data in Dask blocks: ``"auto"`` is exact Newton (from the sample's
    mode every pass is worth a full Hessian), or L-BFGS when the dense Hessian does not fit."""
    if solver != "auto":
        return solver
    return "newton" if exact_hessian_form(objective) == "dense" else "lbfgs"


def build_objective(
    data: FitData | BlockedFitData, prior: ResolvedPrior, multiclass: str
) -> PosteriorObjective:
    """The penalised negative log-posterior of validated data (``multiclass`` resolved)."""
    reference = multiclass != "symmetric"
    if isinstance(data, BlockedFitData):
        return PosteriorObjective(data.likelihood(reference), prior)
    likelihood = SoftmaxLikelihood(
        data.X, data.y, data.sample_weight, data.n_classes, reference=reference
    )
    return PosteriorObjective(likelihood, prior)


def mode_finder(
    estimator, X, y, sample_weight, *, solver="auto", tol=1e-8, max_iter=100, prior="normal"
):
    """Validate the data and build the :class:`ModeFinder` of an estimator of the logistic model.

    ``estimator`` carries the prior parameters (``prior_scale``,
    ``intercept_prior_scale``, ``autoscale``, ``multiclass``); ``prior`` is
    "normal" (those Gaussian scales) or "jeffreys". This sets its
    ``classes_``, ``multiclass_``, ``data_fingerprint_``, ``n_features_in_``
    (and ``feature_names_in_``), as scikit-learn's conventions ask of ``fit``.
    Dask collections (X a Dask array or DataFrame) stay in their blocks: the
    solver makes one pass over them per Newton iteration
    (:mod:`problogreg.core.blocked`).
    """
    blocked = is_dask_collection(X) or is_dask_collection(y)
    if blocked and prior == "jeffreys":
        raise ValueError(
            "prior='jeffreys' is not available for Dask data (its penalty needs every row's "
            "leverage at every step); use prior='normal', or fit in memory."
        )
    if blocked:
        data = validate_blocked_fit_data(estimator, X, y, sample_weight)
    else:
        data = validate_fit_data(estimator, X, y, sample_weight)
    if prior == "jeffreys" and sparse.issparse(data.X):
        raise ValueError(
            "prior='jeffreys' needs a dense X (its Fisher information is formed row by "
            "row); convert X with X.toarray(), or use prior='normal' for sparse data."
        )
    estimator.classes_ = data.classes
    estimator.data_fingerprint_ = data.fingerprint
    prior = resolve_prior(
        estimator.prior_scale,
        estimator.intercept_prior_scale,
        estimator.autoscale,
        data.X,
        data.sample_weight,
        kind=prior,
        column_sd=data.column_sd if blocked else None,
    )
    estimator.multiclass_ = resolve_multiclass(estimator.multiclass, data.n_classes, prior)
    objective = build_objective(data, prior, estimator.multiclass_)
    return ModeFinder(
        objective,
        data.classes,
        getattr(estimator, "feature_names_in_", None),
        solver=solver,
        tol=tol,
        max_iter=max_iter,
    )


@dataclasses.dataclass(frozen=True)
class ModeFinder:
    """Solve for the posterior mode of one objective and explain failures.

    Attributes
    ----------
    objective : PosteriorObjective
    classes : ndarray
        Class labels, for messages.
    columns : ndarray or None
        The training DataFrame's column names (None for an array), for messages.
    solver, tol, max_iter : as for :class:`~problogreg.MAPLogisticRegression`.
    """

    objective: PosteriorObjective
    classes: np.ndarray
    columns: np.ndarray | None
    solver: str = "auto"
    tol: float = 1e-8
    max_iter: int = 100

    @property
    def layout(self):
        return self.objective.layout

    @functools.cached_property
    def feature_names(self) -> list[str]:
        """Formed only when a message needs them: thousands of names cost a wide fit of
        milliseconds a few percent."""
        return names_of_features(self.columns, self.objective.likelihood.n_features)

    def solve(self, start: np.ndarray | None = None) -> MAPResult:
        """The mode (from zeros, or a warm start), checked for separation."""
        objective = self.objective
        solver, sample, sample_steps = self.solver, None, None
        if isinstance(objective.likelihood, BlockedLikelihood):
            solver = blocked_solver(solver, objective)
            if start is None:
                start = self.sample_mode()
                if start is not None and solver == "newton":
                    # Near the sample's mode its Hessian serves the first steps.
                    sample_steps = SAMPLE_HESSIAN_STEPS
                    sample = objective.likelihood.hessian_sample(sample_steps)
        start = np.zeros(objective.n_params) if start is None else start
        try:
            result = minimize(
                objective,
                start,
                solver=solver,
                tol=self.tol,
                max_iter=self.max_iter,
                subsample=sample,
                subsample_steps=sample_steps,
            )
        except SingularHessianError as err:
            self.raise_if_separated(force=True)
            raise ValueError(self.singular_message(err)) from None
        self.raise_if_separated(params=result.params, converged=result.converged)
        if not result.converged:
            warn_not_converged(result, self.tol)
        return MAPResult(
            layout=self.layout,
            prior=objective.prior,
            mode=result.params,
            hessian=result.hessian,
            cholesky=result.cholesky,
            n_iter=result.n_iter,
            converged=result.converged,
            log_likelihood=objective.log_likelihood(result.params),
            log_prior_at_mode=self.log_prior_at(result.params),
            woodbury=result.woodbury,
            deferred_hessian=result.deferred_hessian,
        )

    def sample_mode(self) -> np.ndarray | None:
        """Data in Dask blocks: the mode under the same prior of the likelihood of the rows
        sampled in the validation pass (weighted up to the whole), a start from which
        exact Newton on all rows needs two or three passes; None when that fit does not
        converge (e.g. a separable sample under a flat prior)."""
        likelihood = self.objective.likelihood
        sample = PosteriorObjective(likelihood.sample_likelihood, self.objective.prior)
        start = np.zeros(sample.n_params)
        try:
            result = minimize(sample, start, tol=self.tol, max_iter=SAMPLE_FIT_MAX_ITER)
        except np.linalg.LinAlgError:
            return None
        if not (result.converged and np.all(np.isfinite(result.params))):
            return None
        return result.params

    def log_prior_at(self, phi: np.ndarray) -> float:
        """The log prior density at one point (Gaussian normalised; Jeffreys unnormalised)."""
        objective = self.objective
        if objective.jeffreys is not None:
            return -objective.jeffreys.value(self.layout.to_likelihood(phi))
        return float(log_normal_density(phi, objective.scale))

    def complete_hessian(self, result: MAPResult) -> MAPResult:
        """``result`` with the Hessian its solver deferred, when an exact form fits in
        memory (else unchanged: its standard errors then say why they are missing)."""
        result = dataclasses.replace(result, deferred_hessian=False)
        choice = exact_hessian_choice(self.objective)
        return result if choice is None else self._with_hessian(result, *choice)

    def with_hessian(self, result: MAPResult) -> MAPResult:
        """``result`` with the exact Hessian in the form :func:`exact_hessian_form` picks for
        the data's shape, dense (with its factor) or dual, formed when the solver did not
        keep it in that form (its steps may have used another). BLAS runs on every core
        only when that costs :data:`ALL_CORES_MIN_OPERATIONS` or more."""
        form, cost = exact_hessian_choice(self.objective) or ("dense", np.inf)
        return self._with_hessian(result, form, cost)

    def _with_hessian(self, result: MAPResult, form: str, cost: float) -> MAPResult:
        small = cost < ALL_CORES_MIN_OPERATIONS
        with solver_blas_threads() if small else contextlib.nullcontext():
            return self._form_hessian(result, form)

    def _form_hessian(self, result: MAPResult, form: str) -> MAPResult:
        if form == "dual":
            if result.woodbury is not None:
                return result
            woodbury = self.objective.dual_space.curvature(result.mode)
            return dataclasses.replace(result, woodbury=woodbury, hessian=None, cholesky=None)
        if result.cholesky is not None:
            return result
        hessian = self.objective.hessian(result.mode)
        try:
            cholesky = cholesky_or_explain(hessian)
        except SingularHessianError as err:
            raise ValueError(self.singular_message(err)) from None
        return dataclasses.replace(result, hessian=hessian, cholesky=cholesky)

    # -- failures ------------------------------------------------------------
    def raise_if_separated(self, params=None, converged=True, force=False) -> None:
        """Run the separation LP when the fit looks like a runaway MLE."""
        likelihood, objective = self.objective.likelihood, self.objective
        # Only the reference form can have flat coefficients (symmetric needs a
        # proper prior), and there free and likelihood coordinates coincide. The
        # Jeffreys prior keeps the estimate finite under separation.
        if not likelihood.reference or objective.jeffreys is not None:
            return
        flat = np.flatnonzero(objective.precision == 0)
        if len(flat) == 0 or intercepts_cannot_separate(likelihood, flat):
            return
        if not force:
            theta = self.layout.to_likelihood(params)
            if converged and likelihood.largest_log_likelihood(theta) < -SEPARATION_SUSPICION:
                return
        if isinstance(likelihood, BlockedLikelihood):
            self.check_sample_separation(params, flat, force)
            return
        separation = find_separation(likelihood, flat)
        if separation is None:
            if not force:
                checked = separation_check_fits(likelihood, flat)
                self.warn_if_extreme(params, NOT_SEPARABLE if checked else UNCHECKED)
            return
        raise SeparationError(self.separation_message(separation))

    def check_sample_separation(self, params, flat: np.ndarray, force: bool) -> None:
        """Data in Dask blocks: the exact check on a random sample of rows. A sample that
        is not separable proves the full data are not; a separable one proves nothing."""
        likelihood = self.objective.likelihood
        n_max = SEPARATION_SAMPLE_ROWS
        n_max = min(n_max, MAX_LP_ENTRIES // ((likelihood.n_classes - 1) * len(flat)))
        rows = likelihood.sampled_rows(n_max)
        n_rows = rows.n_samples
        separable = find_separation(rows, flat) is not None
        if force:
            return
        sample = f"a random sample of {n_rows} of the {likelihood.n_samples} rows"
        if separable:
            detail = (
                f"The exact separation check on {sample} finds that sample separable, which "
                "does not tell whether all rows are: if they are, the maximum-likelihood "
                "estimate is infinite and these coefficients are meaningless."
            )
        else:
            detail = (
                f"The exact separation check on {sample} finds no separation, so the full "
                "data are not separable either (a subset of separable data is separable) "
                "and the maximum-likelihood estimate is finite, but it is extreme: its "
                "standard errors and Wald tests are unreliable."
            )
        self.warn_if_extreme(params, detail)

    def warn_if_extreme(self, params, detail: str) -> None:
        """The last guard of a flat-prior fit that the separation check did not stop:
        fitted probabilities numerically 0 or 1 are never returned in silence."""
        likelihood = self.objective.likelihood
        log_lik = likelihood.pointwise_log_likelihood(self.layout.to_likelihood(params))
        extreme = int(np.count_nonzero(log_lik > EXTREME_LOG_PROBABILITY))
        if extreme == 0:
            return
        warnings.warn(
            f"Fitted probabilities numerically 0 or 1 occurred for {extreme} of "
            f"{len(log_lik)} samples (as R's glm warns). {detail} Use a proper prior "
            "(prior_scale) or Firth's bias reduction (prior='jeffreys') instead of "
            "maximum likelihood.",
            SeparationWarning,
            stacklevel=5,
        )

    def separation_message(self, separation) -> str:
        labels = self.layout.likelihood_labels(self.classes, self.feature_names)
        unordered = sorted({tuple(sorted(pair)) for pair in separation.class_pairs})
        pairs = "; ".join(
            f"{format_label(self.classes[a])} and {format_label(self.classes[b])}"
            for a, b in unordered
        )
        params_named = ", ".join(labels[j] for j in separation.parameters)
        n_samples = len(self.objective.likelihood.y)
        if separation.complete:
            kind, detail = "completely", "every sample lies strictly on its own class's side"
        else:
            kind = "quasi-completely"
            detail = (
                f"at least {separation.n_strict} of {n_samples} samples lie strictly on their "
                "own class's side and the rest on the boundary"
            )
        return (
            f"The classes are {kind} separable by a linear combination of [{params_named}] "
            f"(classes {pairs}): {detail}, "
            f"so the maximum-likelihood estimate is infinite. Use a proper "
            "prior instead of prior_scale=None (the default prior_scale=2.5 is weakly "
            "informative), or remove the separating features."
        )

    def singular_message(self, err: SingularHessianError) -> str:
        labels = self.layout.free_labels(self.classes, self.feature_names)
        involved = [labels[j] for j in err.involved]
        X = self.objective.likelihood.X
        sd = np.sqrt(weighted_mean_variance(X, np.ones(X.shape[0]))[1])
        constant = [name for name, value in zip(self.feature_names, sd, strict=True) if value == 0]
        hint = f" Constant columns (they duplicate the intercept): {constant}." if constant else ""
        return (
            "The objective is flat along a combination of "
            f"{involved}: these columns are constant or linearly dependent, so the "
            f"parameters are not identified under a flat prior.{hint} Drop the redundant "
            "columns, or give them a proper prior (set prior_scale, and "
            "intercept_prior_scale for the intercept)."
        )


def intercepts_cannot_separate(likelihood, flat: np.ndarray) -> bool:
    r"""Whether the flat parameters are intercepts only: then no direction of them
    separates the data, since moving intercepts alone lowers some class's probability on
    all its rows, and every class carries weight (validation refuses one that does not);
    the LP is not needed."""
    return bool(np.all(flat < likelihood.n_rows))
