"""problogreg: probabilistic logistic regression.

One model and one Gaussian prior, with a ladder of inference: the MAP (or MLE)
by Newton's method, a Laplace posterior, and NUTS in PyMC; plus generative
comparators and ArviZ-based model comparison.

Names other than the MAP estimator are resolved lazily, so ``import problogreg``
and the MAP/Laplace path never pay for importing PyMC or ArviZ.
"""

from importlib import import_module

# compare() must be bound eagerly: the submodule of the same name would otherwise
# replace the function as an attribute of the package once it is imported.
from .compare import agreement, compare
from .map import MAPLogisticRegression, SeparationError

__version__ = "0.1.0"

_LAZY = {
    "LaplaceLogisticRegression": "laplace",
    "PyMCLogisticRegression": "bayes",
    "SharedCovarianceGaussian": "generative",
    "NaiveBayes": "generative",
}
_SUBMODULES = {"datasets", "plots"}

__all__ = [
    "MAPLogisticRegression",
    "SeparationError",
    "agreement",
    "compare",
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
