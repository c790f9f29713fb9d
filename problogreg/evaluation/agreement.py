r"""How closely two posteriors of the same model agree, in units of the reference posterior.

For each parameter j, with draws from an approximation a (e.g. Laplace) and a
reference b (e.g. NUTS):

* :math:`(\bar a_j - \bar b_j)/\mathrm{sd}(b_j)`, the mean difference in posterior sds;
* :math:`\mathrm{sd}(a_j)/\mathrm{sd}(b_j)`, the sd ratio;
* :math:`W_1(a_j, b_j)/\mathrm{sd}(b_j)`, the 1-Wasserstein distance between
  the two marginals in posterior sds (0 for identical marginals; the mean
  difference is a lower bound);

and for the joint posterior the Kullback-Leibler divergence between the
Gaussians with the draws' means and covariances,

.. math::

    \mathrm{KL}(a \,\|\, b) = \tfrac12\big[\operatorname{tr}(\Sigma_b^{-1}\Sigma_a)
    + (\mu_b - \mu_a)^\top \Sigma_b^{-1} (\mu_b - \mu_a) - p
    + \log\lvert\Sigma_b\rvert - \log\lvert\Sigma_a\rvert\big],

which is invariant to the units of the parameters. The raw-unit joint
Wasserstein distance of ArviZ is computed only on request (it is slow and its
value depends on the units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, stats

# A cheap posterior is "good enough" when every mean is within MEAN_TOLERANCE_SD
# reference posterior sds and every sd ratio within SD_RATIO_TOLERANCE of 1: the same
# thresholds as Laplace's check_approximation() applies to its plain Gaussian.
from ..models._approximation_check import MEAN_TOLERANCE_SD, SD_RATIO_TOLERANCE
from ..posterior.arviz_io import flat_draws, flatten_draws, posterior_tree


@dataclass
class Agreement:
    """How closely posterior ``a`` (an approximation) matches posterior ``b`` (the reference).

    Attributes
    ----------
    table : DataFrame
        Per parameter: ``mean_a``, ``mean_b``, ``sd_a``, ``sd_b``,
        ``mean_diff_sd`` = (mean_a - mean_b) / sd_b, ``sd_ratio`` = sd_a / sd_b
        and ``wasserstein_sd``, the 1-Wasserstein distance of the marginals / sd_b.
    kl_divergence : float
        KL divergence between the Gaussian fits of the joint draws (unit-free).
    wasserstein : float
        The largest ``wasserstein_sd`` (posterior sds).
    good_enough : bool
    verdict : str
    joint_wasserstein : float or None
        ArviZ's joint Wasserstein distance in raw units, only when requested.
    """

    table: pd.DataFrame
    kl_divergence: float
    wasserstein: float
    good_enough: bool
    verdict: str
    joint_wasserstein: float | None = None

    def __repr__(self) -> str:
        return f"{self.verdict}\n{self.table.round(3).to_string()}"


def gaussian_kl(draws_a: np.ndarray, draws_b: np.ndarray) -> float:
    """KL divergence of the Gaussian fits of two sets of draws (S, p) (module docstring)."""
    mean_a, mean_b = draws_a.mean(axis=0), draws_b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(draws_a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(draws_b, rowvar=False))
    factor_b = linalg.cho_factor(cov_b)
    difference = mean_b - mean_a
    log_det_a = np.linalg.slogdet(cov_a)[1]
    log_det_b = 2 * np.sum(np.log(np.diag(factor_b[0])))
    trace = np.trace(linalg.cho_solve(factor_b, cov_a))
    quad = difference @ linalg.cho_solve(factor_b, difference)
    return float(0.5 * (trace + quad - len(mean_a) + log_det_b - log_det_a))


def identified_draws(tree) -> tuple[np.ndarray, list[str]]:
    """Intercept and coefficient draws (S, p) in coordinates every parametrisation shares.

    Binary posteriors are the log-odds of ``classes_[1]`` already. Softmax class rows are
    identified only up to a shift common to all classes (the symmetric model fixes it by
    the prior, the reference model by zeroing ``classes_[0]``), so multiclass rows are
    compared as contrasts against the first class: :math:`w_k - w_0`, :math:`b_k - b_0`.
    """
    values, names = [], []
    for var in ("intercept", "coef"):
        if var not in tree.posterior:
            flat_draws(tree, var)  # raises the error that names what is missing
        array = tree.posterior[var]
        if "class" in array.dims:
            classes = array["class"].values
            contrast = array.isel({"class": slice(1, None)}) - array.isel({"class": 0})
            labels = [f"{c} vs {classes[0]}" for c in classes[1:]]
            array = contrast.assign_coords({"class": labels}).rename(var)
        draws, labels = flatten_draws(array)
        values.append(draws)
        names += labels
    return np.hstack(values), names


def _joint_wasserstein(draws_a: np.ndarray, draws_b: np.ndarray) -> float:
    """ArviZ's joint 1-Wasserstein distance (raw units) between two sets of draws (S, p)."""
    import arviz as az

    from ..posterior.arviz_io import posterior_datatree

    def tree(draws):
        coords = {"parameter": np.arange(draws.shape[1])}
        return posterior_datatree({"theta": (draws[None], ["parameter"])}, coords)

    n_samples = min(500, len(draws_a), len(draws_b))
    return float(
        az.wasserstein(tree(draws_a), tree(draws_b), num_samples=n_samples, round_to="none")
    )


def agreement(
    a, b, *, draws: int = 4000, random_state=0, joint_wasserstein: bool = False
) -> Agreement:
    """Compare two posteriors of the same model parameter by parameter.

    Parameters
    ----------
    a, b : fitted Bayesian models or DataTrees with ``coef`` and ``intercept``
        Conventionally ``a`` is the cheap approximation (Laplace) and ``b`` the
        reference (NUTS). Any mix works: Laplace, NUTS, the LDA posterior, in any
        multiclass parametrisation (rows are compared as contrasts against the first
        class, see :func:`identified_draws`).
    draws, random_state : used when a posterior has to be sampled.
    joint_wasserstein : bool, default=False
        Also compute ArviZ's joint Wasserstein distance in raw units (slow).

    Returns
    -------
    Agreement
        ``good_enough`` when every |mean_diff_sd| <= 0.1 and every sd ratio is
        within 10 % of 1. Parameters fixed in both posteriors are left out.

    Examples
    --------
    >>> from problogreg import LaplaceLogisticRegression, agreement, datasets
    >>> X, y = datasets.load("two_gaussians", n_samples=2000)
    >>> laplace = LaplaceLogisticRegression().fit(X, y)
    >>> wide = LaplaceLogisticRegression(prior_scale=100.0).fit(X, y)
    >>> agreement(laplace, wide).good_enough  # with n = 2000 the prior hardly matters
    True
    """
    tree_a = posterior_tree(a, draws, random_state)
    tree_b = posterior_tree(b, draws, random_state)
    draws_a, names = identified_draws(tree_a)
    draws_b, names_b = identified_draws(tree_b)
    if names != names_b:
        raise ValueError(
            f"The posteriors do not describe the same parameters: {names} in a and {names_b} in b."
        )
    sd_a, sd_b = draws_a.std(axis=0, ddof=1), draws_b.std(axis=0, ddof=1)
    varies = (sd_a > 0) | (sd_b > 0)
    draws_a, draws_b, sd_a, sd_b = (
        draws_a[:, varies],
        draws_b[:, varies],
        sd_a[varies],
        sd_b[varies],
    )
    table = pd.DataFrame(
        {
            "mean_a": draws_a.mean(axis=0),
            "mean_b": draws_b.mean(axis=0),
            "sd_a": sd_a,
            "sd_b": sd_b,
        },
        index=pd.Index(np.asarray(names)[varies], name="parameter"),
    )
    table["mean_diff_sd"] = (table["mean_a"] - table["mean_b"]) / sd_b
    table["sd_ratio"] = sd_a / sd_b
    table["wasserstein_sd"] = [
        stats.wasserstein_distance(draws_a[:, j], draws_b[:, j]) / sd_b[j]
        for j in range(draws_a.shape[1])
    ]
    worst_mean = float(table["mean_diff_sd"].abs().max())
    worst_sd = float((table["sd_ratio"] - 1).abs().max())
    worst_distance = float(table["wasserstein_sd"].max())
    good = worst_mean <= MEAN_TOLERANCE_SD and worst_sd <= SD_RATIO_TOLERANCE
    kl = gaussian_kl(draws_a, draws_b)
    joint = _joint_wasserstein(draws_a, draws_b) if joint_wasserstein else None
    verdict = (
        f"{'Good enough' if good else 'Not good enough'}: means differ by at most "
        f"{worst_mean:.2f} posterior sd and sds by at most {100 * worst_sd:.0f}% "
        f"(thresholds {MEAN_TOLERANCE_SD} sd, {100 * SD_RATIO_TOLERANCE:.0f}%); marginals "
        f"differ by at most {worst_distance:.2f} sd (1-Wasserstein); Gaussian KL {kl:.3f}."
    )
    return Agreement(
        table=table,
        kl_divergence=kl,
        wasserstein=worst_distance,
        good_enough=good,
        verdict=verdict,
        joint_wasserstein=joint,
    )
