"""Posterior objects shared by every Bayesian model: the Gaussian (Laplace) posterior,
predictions from draws, and the ArviZ DataTree layout of draws."""
