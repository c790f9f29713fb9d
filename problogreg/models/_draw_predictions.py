"""Predictions of an estimator that stores posterior draws (NUTS), via one DrawPredictor."""

from __future__ import annotations

import numpy as np

from ..core.validation import check_probability, check_random_state, validate_predict_data


class DrawPredictionMixin:
    """``predict_*`` and ``sample_posterior_predictive`` from ``self._predictor()``,
    a :class:`~problogreg.posterior.draws.DrawPredictor` over the stored draws
    (``idata_`` gives their chain and draw shape)."""

    def predict_log_proba(self, X):
        """Log of the posterior-mean class probabilities, shape (n_samples, n_classes)."""
        return self._predictor().mean_log_proba(validate_predict_data(self, X))

    def predict_proba(self, X):
        """Posterior-mean class probabilities, shape (n_samples, n_classes)."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Class with the highest posterior-mean probability."""
        best = np.argmax(self.predict_log_proba(X), axis=1)
        return self.classes_[best]

    def predict_interval(self, X, prob=0.94):
        """Equal-tailed posterior interval of each class probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        prob : float in (0, 1), default=0.94

        Returns
        -------
        lower, upper : ndarray of shape (n_samples, n_classes)
            The ``(1 - prob) / 2`` and ``(1 + prob) / 2`` quantiles of
            :math:`p(y = k \\mid x, \\theta)` over the posterior draws.
        """
        prob = check_probability(prob, "prob")
        return self._predictor().interval(validate_predict_data(self, X), prob)

    def sample_posterior_predictive(self, X, random_state=None):
        """Draw labels from the posterior predictive distribution at X.

        One label per posterior draw and row: :math:`\\tilde y^{(s)}_i \\sim
        \\operatorname{Categorical}(p(\\cdot \\mid x_i, \\theta^{(s)}))`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        random_state : None, int or numpy Generator, default=None

        Returns
        -------
        xarray.DataTree
            Group ``posterior_predictive`` with variable ``y`` (class labels),
            dims (chain, draw, obs_id).
        """
        import xarray as xr

        X = validate_predict_data(self, X)
        codes = self._predictor().sample_labels(X, check_random_state(random_state))
        sizes = self.idata_.posterior.sizes
        n_chains, n_draws = sizes["chain"], sizes["draw"]
        labels = self.classes_[codes].reshape(n_chains, n_draws, -1)
        return xr.DataTree.from_dict(
            {
                "posterior_predictive": xr.Dataset(
                    {"y": (("chain", "draw", "obs_id"), labels)},
                    coords={
                        "chain": np.arange(n_chains),
                        "draw": np.arange(n_draws),
                        "obs_id": np.arange(X.shape[0]),
                    },
                )
            }
        )
