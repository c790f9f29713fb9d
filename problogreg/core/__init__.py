"""The core: data validation, the likelihood, priors, the objective, its layout and the solver.

Pure numpy/scipy, no estimator logic. Layers above import from here; nothing
here imports from them. The data flow is
``validation -> likelihood + priors -> objective (and its ParameterLayout) ->
newton -> MAPResult``.
"""
