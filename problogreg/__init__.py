"""problogreg: probabilistic logistic regression.

One model and one Gaussian prior, with a ladder of inference: the MAP (or MLE)
by Newton's method, a Laplace posterior, and NUTS in PyMC; plus generative
comparators and ArviZ-based model comparison.

The layers (see ARCHITECTURE.md): ``core`` (validation, likelihood, priors,
objective and its parameter layout, Newton solver, separation), ``posterior``
(the Gaussian posterior, predictions from draws, ArviZ I/O, PSIS-LOO),
``models`` (MAP, Laplace, NUTS, generative), ``evaluation`` (compare,
agreement), then plots, datasets, the study and the command line. The NUTS and
generative estimators are resolved lazily, so ``import problogreg`` and the
MAP/Laplace path never pay for importing PyMC or ArviZ (nor Zarr, which
:func:`open_zarr` needs).
"""

from importlib import import_module

from .core.layout import ParameterLayout
from .core.result import MAPResult
from .evaluation.agreement import Agreement, agreement
from .evaluation.compare import compare
from .formula import FormulaModel, from_formula
from .models.laplace import ApproximationCheck, LaplaceLogisticRegression, UndefinedEvidenceError
from .models.map import MAPLogisticRegression, SeparationError, SeparationWarning
from .posterior.gaussian import GaussianPosterior

__version__ = "0.1.0"

_LAZY = {
    "PyMCLogisticRegression": "models.nuts",
    "SamplingWarning": "models.nuts",
    "SharedCovarianceGaussian": "models.generative",
    "NaiveBayes": "models.generative",
    "open_zarr": "zarr_store",
}
_SUBMODULES = {"datasets", "plots"}

__all__ = [
    "Agreement",
    "ApproximationCheck",
    "FormulaModel",
    "GaussianPosterior",
    "LaplaceLogisticRegression",
    "MAPLogisticRegression",
    "MAPResult",
    "ParameterLayout",
    "SeparationError",
    "SeparationWarning",
    "UndefinedEvidenceError",
    "agreement",
    "compare",
    "from_formula",
    *_LAZY,
    *sorted(_SUBMODULES),
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'problogreg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
