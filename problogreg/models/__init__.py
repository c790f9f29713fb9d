"""The estimators: MAP and Laplace on the logistic model, NUTS in PyMC, generative comparators.

PyMC and the generative models are imported only when used (see the package's
``__init__``).
"""
