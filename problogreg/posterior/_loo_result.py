"""The ELPD result type of the package (imports ArviZ: loaded only when a LOO is computed)."""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az


@dataclass(kw_only=True, repr=False)
class LOOResult(az.ELPDDataLOO):
    """``arviz.ELPDDataLOO`` with the method that produced it (accepted by ``az.compare``)."""

    method: str = "PSIS-LOO"

    def _header(self):
        return f"{self.method}: {self.n_data_points} observations"
