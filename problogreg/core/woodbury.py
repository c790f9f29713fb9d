r"""The Hessian of the negative log-posterior in dual (Woodbury) form, for d > n.

With free parameters :math:`\phi = (\phi_F, w)` -- the intercepts (or their
contrasts) :math:`\phi_F` and the coefficient rows :math:`w` (m x d) -- the
Hessian of :math:`f` (:mod:`problogreg.core.objective`) is

.. math::

    H = \begin{pmatrix} A & B^\top \\ B & D \end{pmatrix}, \qquad
    D = \Lambda + J^\top G G^\top J,

with :math:`\Lambda` the diagonal prior precision of the coefficients,
:math:`J = I_m \otimes X` the map from coefficients to the linear predictors
:math:`\eta_{ki} = x_i^\top w_k`, and :math:`G G^\top = C` the per-sample
curvature of the likelihood (:meth:`SoftmaxLikelihood.curvature_root`, r
columns per sample: K - 1, the curvature's rank). By Woodbury's identity

.. math::

    D^{-1} = \Lambda^{-1} - \Lambda^{-1} J^\top G\, M^{-1} G^\top J \Lambda^{-1},
    \qquad M = I + G^\top (I_m \otimes \mathcal K) G, \quad
    \mathcal K = X \Lambda_w^{-1} X^\top,

so a Newton step costs a Cholesky factorisation of the rn x rn matrix M (and
the n x n kernel :math:`\mathcal K` is formed once per fit), not of the
m(d+1)-dimensional H. The few intercepts, whose prior may be flat, are
eliminated through the Schur complement :math:`S = A - B^\top D^{-1} B`. The
determinant lemma gives :math:`\log|H| = \log|\Lambda| + \log|M| + \log|S|`.

Needs a proper prior on every coefficient with the same scales for every
class row (always so: :meth:`ParameterLayout.free_prior_scale` tiles them).
X may be dense or a scipy.sparse matrix; it is used only through products.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy import linalg, sparse

from .numerics import add_to_diagonal, rows_times, rows_times_squares, rows_times_transpose


class DualSpace:
    r"""What the dual Newton steps of one objective share: the kernel
    :math:`\mathcal K = X \Lambda_w^{-1} X^\top`, the squared entries of X (for
    the Hessian's diagonal) and the intercepts' coordinates.

    Parameters
    ----------
    objective : PosteriorObjective
        With a proper prior on every coefficient (:func:`dual_form_applies`).
    """

    def __init__(self, objective):
        likelihood, layout = objective.likelihood, objective.layout
        self.objective = objective
        self.X = likelihood.X
        self.n_rows = layout.n_rows
        self.n_features = layout.n_features
        self.n_intercepts = layout.n_intercepts
        self.intercept_precision = objective.precision[: self.n_intercepts]
        self.coef_precision = objective.precision[
            self.n_intercepts : self.n_intercepts + self.n_features
        ]
        # theta's intercepts are intercept_map @ phi_F (the Helmert contrasts, or I).
        contrasts = layout.contrasts
        self.intercept_map = np.eye(self.n_rows) if contrasts is None else contrasts
        self.kernel = self._kernel()
        self.likelihood = likelihood

    def _kernel(self) -> np.ndarray:
        X, inverse = self.X, 1.0 / self.coef_precision
        if not sparse.issparse(X):
            # A @ A.T of one buffer is a symmetric rank-k update (BLAS syrk) in numpy,
            # without weighted_gram's block copies of the transposed X (1.5x at 200 x 2000).
            if np.all(inverse == inverse[0]):
                return (X @ X.T) * inverse[0]
            scaled = X * np.sqrt(inverse)
            return scaled @ scaled.T
        return np.asarray((X.multiply(inverse[None, :]).tocsr() @ X.T).toarray())

    def curvature(self, phi: np.ndarray) -> WoodburyHessian:
        """The Hessian at ``phi`` in dual form."""
        theta = self.objective.layout.to_likelihood(phi)
        return WoodburyHessian(self, self.objective.likelihood.curvature_root(theta))


def intercept_curvature(per_sample: np.ndarray, intercept_map: np.ndarray) -> np.ndarray:
    r""":math:`u_f = C \circ (T_F e_f)` for each free intercept f, shape (m_F, m, n): the
    per-sample curvature C (m, m, n) along the direction of that intercept in the class
    rows (``intercept_map`` T_F, (m, m_F))."""
    return np.einsum("kln,lf->fkn", per_sample, intercept_map)


def dual_matrix(kernel: np.ndarray, root: np.ndarray) -> np.ndarray:
    r""":math:`M = I + G^\top (I_m \otimes \mathcal K) G`, rn x rn, for the per-sample
    factors G (r, m, n) and the kernel :math:`\mathcal K` (n, n): block (a, b) is
    :math:`\mathcal K \odot (G_a^\top G_b)`."""
    r, _, n = root.shape
    dual = np.empty((r, n, r, n))
    for a in range(r):
        for b in range(a, r):
            dual[a, :, b, :] = kernel * (root[a].T @ root[b])
            if b != a:
                dual[b, :, a, :] = dual[a, :, b, :].T
    dual = dual.reshape(r * n, r * n)
    return add_to_diagonal(dual, 1.0)


class WoodburyHessian:
    r"""The Hessian H of the module docstring at one point, factorised in dual form.

    Parameters
    ----------
    space : DualSpace
    root : ndarray of shape (r, m, n)
        :math:`G`: per-sample factors with :math:`C_i = \sum_c g_{ci} g_{ci}^\top`.
    """

    def __init__(self, space: DualSpace, root: np.ndarray):
        self.space = space
        self.root = root
        _, m, n = root.shape
        self.dual_cholesky = linalg.cholesky(
            dual_matrix(space.kernel, root), lower=True, check_finite=False
        )
        # Intercept blocks: u_f = C o (T_F e_f), one (m, n) array per free intercept, A and
        # B = X'u. With K = X Lambda^-1 X' already formed, D^-1 B = Lambda^-1 X' w for
        # w = u - G M^-1 G' K u, and B' D^-1 B = u' K w: one pass over X (for D^-1 B)
        # instead of three; B itself is formed only if solve() asks for it.
        per_sample = np.einsum("ckn,cln->kln", root, root)  # C_i, shape (m, m, n)
        self._intercept_columns = intercept_curvature(per_sample, space.intercept_map)
        kernel_columns = (self._intercept_columns.reshape(-1, n) @ space.kernel).reshape(-1, m, n)
        residual = self._intercept_columns - self._dual_correction(kernel_columns)
        intercept_map = space.intercept_map
        self.intercept_block = intercept_map.T @ per_sample.sum(axis=2) @ intercept_map
        add_to_diagonal(self.intercept_block, space.intercept_precision)
        self.solved_cross = (
            rows_times(space.X, residual.reshape(-1, n)).reshape(-1, m, space.n_features)
            / space.coef_precision
        )
        schur = self.intercept_block - np.einsum("fkn,gkn->fg", kernel_columns, residual)
        self.schur = 0.5 * (schur + schur.T)
        self.schur_cholesky = linalg.cholesky(self.schur, lower=True, check_finite=False)
        self._own_curvature = np.einsum("kkn->kn", per_sample)

    @cached_property
    def cross(self) -> np.ndarray:
        r""":math:`B = X^\top u_f` per free intercept (m_F, m, d), the coupling of
        intercepts and coefficients: a pass over X, made when :meth:`solve` first needs it."""
        _, m, n = self.root.shape
        rows = self._intercept_columns.reshape(-1, n)
        return rows_times(self.space.X, rows).reshape(-1, m, self.space.n_features)

    def _dual_correction(self, eta: np.ndarray, dual_shift: np.ndarray | None = None):
        r""":math:`G M^{-1} (G^\top \eta + z)` for per-sample vectors :math:`\eta` (q, m, n)
        and an optional shift z (q, rn) in the dual space: with z = 0 the part of
        :math:`D^{-1}` that the data add (Woodbury's identity in the dual space)."""
        r, _, n = self.root.shape
        dual = np.einsum("ckn,qkn->qcn", self.root, eta).reshape(-1, r * n)
        if dual_shift is not None:
            dual += dual_shift
        solved = linalg.cho_solve((self.dual_cholesky, True), dual.T, check_finite=False).T
        return np.einsum("ckn,qcn->qkn", self.root, solved.reshape(-1, r, n))

    @cached_property
    def coef_diagonal(self) -> np.ndarray:
        r""":math:`H_{jj}` of the coefficients (m, d), :math:`\lambda_j + \sum_i C_{i,kk}
        x_{ij}^2`: a pass over X, made only when asked for (NUTS' whitening, a solver's
        convergence test), not for the posterior itself."""
        return self.space.coef_precision + rows_times_squares(self.space.X, self._own_curvature)

    @property
    def n_intercepts(self) -> int:
        return self.space.n_intercepts

    def solve_coefficients(self, v: np.ndarray) -> np.ndarray:
        r""":math:`D^{-1} v` for v of shape (..., m, d), by Woodbury's identity."""
        space = self.space
        _, m, n = self.root.shape
        lead = v.shape[:-2]
        scaled = (v / space.coef_precision).reshape(-1, space.n_features)
        eta = rows_times_transpose(space.X, scaled).reshape(-1, m, n)
        back = self._dual_correction(eta).reshape(-1, n)
        correction = rows_times(space.X, back).reshape(*lead, m, space.n_features)
        return scaled.reshape(*lead, m, space.n_features) - correction / space.coef_precision

    def solve(self, g: np.ndarray) -> np.ndarray:
        r""":math:`H^{-1} g` for one free-coordinate vector or a stack (q, p), by block
        elimination: :math:`x_F = S^{-1}(g_F - B^\top D^{-1} g_P)`,
        :math:`x_P = D^{-1}g_P - D^{-1}B x_F`."""
        space = self.space
        k = self.n_intercepts
        stack = np.atleast_2d(g)
        g_coef = stack[:, k:].reshape(-1, space.n_rows, space.n_features)
        solved_coef = self.solve_coefficients(g_coef)
        reduced = stack[:, :k] - np.einsum("fkd,qkd->qf", self.cross, solved_coef)
        x_intercept = linalg.cho_solve((self.schur_cholesky, True), reduced.T, check_finite=False).T
        x_coef = solved_coef - np.einsum("qf,fkd->qkd", x_intercept, self.solved_cross)
        out = np.concatenate([x_intercept, x_coef.reshape(len(stack), -1)], axis=1)
        return out.reshape(np.shape(g))

    def diagonal(self) -> np.ndarray:
        """:math:`H_{jj}` for every free parameter."""
        return np.concatenate([np.diag(self.intercept_block), self.coef_diagonal.ravel()])

    def log_determinant(self) -> float:
        r""":math:`\log|H| = \log|\Lambda| + \log|M| + \log|S|` (matrix determinant lemma)."""
        return float(
            self.space.n_rows * np.sum(np.log(self.space.coef_precision))
            + 2 * np.sum(np.log(np.diag(self.dual_cholesky)))
            + 2 * np.sum(np.log(np.diag(self.schur_cholesky)))
        )

    # -- the Gaussian N(mean, H^{-1}) in this form (used by the posterior layer) ------
    @property
    def noise_dim(self) -> int:
        """Standard normals per draw of :meth:`noise_to_offsets`: intercepts, coefficients
        and the rn dual coordinates."""
        r, m, n = self.root.shape
        return self.n_intercepts + m * self.space.n_features + r * n

    def noise_to_offsets(self, noise: np.ndarray) -> np.ndarray:
        r"""Draws of :math:`N(0, H^{-1})` from standard normals (S, :attr:`noise_dim`).

        The intercepts' marginal precision is the Schur complement S, so
        :math:`x_F = L_S^{-\top} z_F`; given them the coefficients are
        :math:`N(-D^{-1}B x_F, D^{-1})`, drawn by the exact sampler of Bhattacharya,
        Chakraborty & Mallick (2016) for :math:`D = \Lambda + U^\top U`,
        :math:`U = G^\top J`: :math:`u = \Lambda^{-1/2} z_w`,
        :math:`v = U u + z_\delta`, :math:`x_w = u - \Lambda^{-1} U^\top M^{-1} v`.
        """
        space = self.space
        _, m, n = self.root.shape
        d, k = space.n_features, self.n_intercepts
        noise = np.atleast_2d(noise)
        x_intercept = linalg.solve_triangular(
            self.schur_cholesky, noise[:, :k].T, lower=True, trans="T", check_finite=False
        ).T
        u = noise[:, k : k + m * d].reshape(-1, m, d) / np.sqrt(space.coef_precision)
        eta = rows_times_transpose(space.X, u.reshape(-1, d)).reshape(-1, m, n)
        back = self._dual_correction(eta, noise[:, k + m * d :]).reshape(-1, n)
        x_coef = u - rows_times(space.X, back).reshape(-1, m, d) / space.coef_precision
        x_coef -= np.einsum("qf,fkd->qkd", x_intercept, self.solved_cross)
        return np.concatenate([x_intercept, x_coef.reshape(len(noise), -1)], axis=1)

    def product(self, v: np.ndarray) -> np.ndarray:
        r""":math:`H v` for vectors v (..., p) in free coordinates."""
        space, root = self.space, self.root
        _, m, n = root.shape
        d, k = space.n_features, self.n_intercepts
        v = np.atleast_2d(v)
        v_intercept, v_coef = v[:, :k], v[:, k:].reshape(-1, m, d)
        eta = rows_times_transpose(space.X, v_coef.reshape(-1, d)).reshape(-1, m, n)
        eta += (v_intercept @ space.intercept_map.T)[:, :, None]
        curved = np.einsum("ckn,cln,qln->qkn", root, root, eta)
        out_coef = rows_times(space.X, curved.reshape(-1, n)).reshape(-1, m, d)
        out_coef += space.coef_precision * v_coef
        out_intercept = curved.sum(axis=2) @ space.intercept_map
        out_intercept += space.intercept_precision * v_intercept
        return np.concatenate([out_intercept, out_coef.reshape(len(v), -1)], axis=1)

    def dual_projection(self, kernel_columns: np.ndarray, row: int) -> np.ndarray:
        r""":math:`L_M^{-1} G^\top J \Lambda^{-1} a` for the vectors a that put
        :math:`x_c` in coefficient row ``row``, given :math:`X\Lambda_w^{-1}x_c` (n, c)."""
        root = self.root
        r, _, n = root.shape
        stacked = (root[:, row, :, None] * kernel_columns[None]).reshape(r * n, -1)
        return linalg.solve_triangular(self.dual_cholesky, stacked, lower=True, check_finite=False)

    def intercept_residual(self, columns: np.ndarray, row: int, intercept: bool) -> np.ndarray:
        r""":math:`L_S^{-1}(T_{row} - E_{row} x_c)` (without :math:`T_{row}` unless
        ``intercept``), with :math:`E = D^{-1}B`, for columns :math:`x_c` (d, c): the
        intercept part of :math:`a^\top H^{-1} a`."""
        residual = -(self.solved_cross[:, row, :] @ columns)
        if intercept:
            residual += self.space.intercept_map[row][:, None]
        return linalg.solve_triangular(
            self.schur_cholesky, residual, lower=True, check_finite=False
        )

    def covariance_terms(self, columns: np.ndarray, intercept: bool):
        r"""For a set of vectors :math:`a_k = (T_k [\text{intercept}], e_k \otimes x_c)`
        (columns :math:`x_c`, shape (d, c)): :math:`x^\top\Lambda_w^{-1}x`, and per
        row k the factors whose inner products make :math:`a_k^\top H^{-1} a_l`

        .. math::

            a_k^\top H^{-1} a_l = h_k^\top S^{-1} h_l + \delta_{kl}\, x^\top\Lambda_w^{-1}x
            - q_k^\top q_l,

        :math:`h_k = T_k - E_k x`, :math:`q_k = L_M^{-1} G^\top J\Lambda^{-1} a_k`.
        """
        space = self.space
        scaled = columns / space.coef_precision[:, None]
        kernel_columns = np.asarray(space.X @ scaled)
        prior_part = np.einsum("dc,dc->c", columns, scaled)
        dual = [self.dual_projection(kernel_columns, k) for k in range(space.n_rows)]
        residual = [self.intercept_residual(columns, k, intercept) for k in range(space.n_rows)]
        return prior_part, residual, dual

    def linear_predictor_covariance(self, rows: np.ndarray) -> np.ndarray:
        r"""Covariance of the m linear predictors :math:`\eta_k = (T\phi_F)_k + x^\top w_k`
        at each of the dense ``rows`` (c, d), shape (c, m, m) (:meth:`covariance_terms`)."""
        m = self.space.n_rows
        prior_part, residual, dual = self.covariance_terms(np.asarray(rows).T, intercept=True)
        cov = np.empty((len(prior_part), m, m))
        for a in range(m):
            for b in range(a, m):
                value = np.einsum("jc,jc->c", residual[a], residual[b])
                value -= np.einsum("jc,jc->c", dual[a], dual[b])
                if a == b:
                    value += prior_part
                cov[:, a, b] = cov[:, b, a] = value
        return cov

    def inverse_diagonal(self, block_features: int = 2048) -> np.ndarray:
        r""":math:`\mathrm{diag}(H^{-1})` in free coordinates: the intercepts' from
        :math:`S^{-1}`; coefficient (k, j)'s is :meth:`covariance_terms`' formula at
        :math:`x = e_j` without intercept, computed for blocks of features at once."""
        space = self.space
        m, d = space.n_rows, space.n_features
        identity = np.eye(self.n_intercepts)
        intercept_inverse = linalg.cho_solve((self.schur_cholesky, True), identity)
        out = np.empty((m, d))
        for start in range(0, d, block_features):
            block = slice(start, min(d, start + block_features))
            columns = space.X[:, block]
            columns = columns.toarray() if sparse.issparse(columns) else columns
            kernel_columns = columns / space.coef_precision[block]
            for k in range(m):
                q = self.dual_projection(kernel_columns, k)
                h = linalg.solve_triangular(
                    self.schur_cholesky, self.solved_cross[:, k, block], lower=True
                )
                out[k, block] = (
                    1.0 / space.coef_precision[block]
                    + np.einsum("jc,jc->c", h, h)
                    - np.einsum("jc,jc->c", q, q)
                )
        return np.concatenate([np.diag(intercept_inverse), out.ravel()])
