"""The ELPD result type of the package (imports ArviZ: loaded only when a LOO is computed)."""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np


@dataclass(kw_only=True, repr=False)
class LOOResult(az.ELPDDataLOO):
    """``arviz.ELPDDataLOO`` with the method that produced it (accepted by ``az.compare``),
    the Monte Carlo standard error of ``elpd`` (and the pointwise variances it sums), the
    number of refits behind it, and ``psis_pareto_k``: the pointwise Pareto k of the
    PSIS-LOO estimate it started from, kept when refits or K-fold replace that estimate
    (whose ``pareto_k`` then holds the refits' k), with ``psis_good_k``, the threshold
    those k were flagged against; both None when no PSIS was involved."""

    method: str = "PSIS-LOO"
    mcse_elpd: float = 0.0
    variance_i: np.ndarray | None = None
    n_refits: int = 0
    psis_pareto_k: np.ndarray | None = None
    psis_good_k: float | None = None

    def _header(self):
        return f"{self.method}: {self.n_data_points} observations"
