"""Kernel PCA: scikit-learn's exact method, plus Nyström landmarks and a GPU path.

Without landmarks and on NumPy input the fit is scikit-learn's own KernelPCA (this class
subclasses it), so results are identical. ``n_landmarks=m`` replaces the n×n kernel by the
Nyström approximation through m landmarks: fit costs O(n·m²) time and O(n·m) memory.
``device=`` (or torch/CuPy input) computes kernels and eigendecompositions on that device,
written once against the Array API.
"""

import math
import numbers

import numpy as np
from sklearn.cluster import kmeans_plusplus
from sklearn.decomposition import KernelPCA as _SkKernelPCA
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._array_api import array_namespace, foreign_namespace, from_numpy, to_numpy
from .._array_api import device as array_device
from .._compute._arrays import check_input
from .._compute._backend import resolve_backend
from .._keywords import KeywordCheckMixin
from .._persistence import VersionedStateMixin
from .._sklearn_compat import Interval, StrOptions
from .._validation import fit_context
from ..distances import pairwise_distances

_ARRAY_KERNELS = ("linear", "rbf", "poly", "sigmoid", "cosine")


class KernelPCA(VersionedStateMixin, KeywordCheckMixin, _SkKernelPCA):
    """Kernel principal component analysis, exact or with Nyström landmarks, CPU or GPU.

    The parameters and results of :class:`sklearn.decomposition.KernelPCA`, plus:

    Parameters
    ----------
    n_components, kernel, gamma, degree, coef0, kernel_params, alpha, fit_inverse_transform, \
eigen_solver, tol, max_iter, iterated_power, remove_zero_eig, random_state, copy_X, n_jobs
        As in scikit-learn's KernelPCA (``gamma=None`` means ``1 / n_features``).
    n_landmarks : int, default=None
        Number m of landmarks of the Nyström approximation ``K ≈ K_nm K_mm⁺ K_mn``. None
        computes the exact n×n kernel. Must not exceed the number of samples.
    landmark_method : {'uniform', 'kmeans++'}, default='uniform'
        How landmarks are chosen: a uniform random subset of the samples, or k-means++
        seeding (better spread, slightly slower).
    device : {None, 'cpu', 'cuda', 'auto'}, default=None
        Compute with torch on this device (None: NumPy; torch or CuPy input is computed in
        its own namespace). ``transform`` returns the namespace of its input.

    Attributes
    ----------
    eigenvalues_ : ndarray of shape (n_components,)
        Eigenvalues of the centred (approximate) kernel, in decreasing order.
    eigenvectors_ : ndarray of shape (n_samples, n_components)
        Exact mode: eigenvectors of the centred kernel (as scikit-learn).
    landmarks_ : ndarray of shape (n_landmarks, n_features)
        Landmark mode: the landmarks.
    landmark_components_ : ndarray of shape (n_landmarks, n_components)
        Landmark mode: maps kernel values against the landmarks to the components.
    gamma_ : float
        The kernel coefficient used.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    sklearn.decomposition.KernelPCA : the exact method this class extends.
    make_kernel_learner : a Mahalanobis learner after kernel PCA (kernelised metric learning).

    References
    ----------
    .. [1] B. Schölkopf, A. Smola, K.-R. Müller. "Nonlinear component analysis as a kernel
       eigenvalue problem", Neural Computation 10(5), 1998.
    .. [2] C. Williams, M. Seeger. "Using the Nyström method to speed up kernel machines",
       NIPS 2001.

    Examples
    --------
    >>> from sklearn.datasets import make_circles
    >>> from skmetric import KernelPCA
    >>> X, y = make_circles(n_samples=400, factor=0.3, noise=0.05, random_state=0)
    >>> kpca = KernelPCA(n_components=2, kernel="rbf", gamma=10, n_landmarks=100,
    ...                  random_state=0)
    >>> kpca.fit_transform(X).shape
    (400, 2)
    """

    _parameter_constraints = {
        **_SkKernelPCA._parameter_constraints,
        "n_landmarks": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "landmark_method": [StrOptions({"uniform", "kmeans++"})],
        "device": "no_validation",  # checked by resolve_backend
    }

    def __init__(self, n_components=None, *, kernel="linear", gamma=None, degree=3, coef0=1,
                 kernel_params=None, alpha=1.0, fit_inverse_transform=False,
                 eigen_solver="auto", tol=0, max_iter=None, iterated_power="auto",
                 remove_zero_eig=False, random_state=None, copy_X=True, n_jobs=None,
                 n_landmarks=None, landmark_method="uniform", device=None):
        super().__init__(
            n_components=n_components, kernel=kernel, gamma=gamma, degree=degree,
            coef0=coef0, kernel_params=kernel_params, alpha=alpha,
            fit_inverse_transform=fit_inverse_transform, eigen_solver=eigen_solver, tol=tol,
            max_iter=max_iter, iterated_power=iterated_power, remove_zero_eig=remove_zero_eig,
            random_state=random_state, copy_X=copy_X, n_jobs=n_jobs,
        )
        self.n_landmarks = n_landmarks
        self.landmark_method = landmark_method
        self.device = device

    # -- fitting ---------------------------------------------------------------------------

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model from data in X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training vectors (NumPy, torch or CuPy), or the kernel for 'precomputed'.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._fit_mode = self._choose_mode(X)
        if self._fit_mode == "sklearn":
            if self.kernel == "precomputed":
                _check_square_kernel(X)
            return super().fit(X)
        X, xp, dev = self._to_compute_array(X, reset=True)
        self.gamma_ = 1 / X.shape[1] if self.gamma is None else self.gamma
        if self._fit_mode == "landmarks":
            self._fit_landmarks(X, xp)
        else:
            self._fit_exact_array(X, xp)
        return self

    def fit_transform(self, X, y=None, **params):
        """Fit the model and return the training data in the components' space."""
        if self.n_landmarks is None and self.device is None and foreign_namespace(X) is None:
            return super().fit_transform(X, **params)  # scikit-learn's own shortcut
        return self.fit(X).transform(X)

    def _choose_mode(self, X):
        if self.kernel == "precomputed" and self.n_landmarks is not None:
            raise ValueError(
                "n_landmarks cannot be used with kernel='precomputed': the landmark kernel "
                "needs the features. Pass the features with a named kernel, or drop "
                "n_landmarks."
            )
        uses_arrays = self.device is not None or foreign_namespace(X) is not None
        if self.n_landmarks is None and not uses_arrays:
            return "sklearn"
        if callable(self.kernel) or self.kernel_params:
            raise ValueError(
                "A callable kernel or kernel_params works only in the exact NumPy mode; "
                f"use one of {_ARRAY_KERNELS} with n_landmarks or device."
            )
        if self.kernel == "precomputed":
            raise ValueError("kernel='precomputed' works only in the exact NumPy mode.")
        if self.fit_inverse_transform and self.n_landmarks is None:
            raise ValueError(
                "fit_inverse_transform on a device is not supported; fit on NumPy input "
                "with device=None, or use n_landmarks."
            )
        return "landmarks" if self.n_landmarks is not None else "exact_array"

    def _to_compute_array(self, X, *, reset):
        """Validate X and move it to the namespace/device the model computes in."""
        xp_in = foreign_namespace(X)
        if xp_in is None:
            X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        else:
            X = self._check_foreign(X, xp_in, reset)
        if reset:
            xp, dev = self._compute_namespace(X)
        else:
            fitted = self.landmarks_ if self._fit_mode == "landmarks" else self.X_fit_
            xp, dev = array_namespace(fitted), array_device(fitted)
        if xp_in is None or xp_in is not xp or array_device(X) != dev:
            X = from_numpy(to_numpy(X), xp, dev)
        return X, xp, dev

    def _compute_namespace(self, X):
        """Namespace and device of the fit: torch on ``device``, else the input's own."""
        backend = resolve_backend(X, self.device)
        return backend.xp, backend.device

    def _check_foreign(self, X, xp, reset):
        """The checks of ``validate_data`` for a torch/CuPy array, without leaving its device."""
        X = check_input(X, "X", n_features=None if reset else self.n_features_in_,
                        owner=type(self).__name__)
        if reset:
            self.n_features_in_ = X.shape[1]
        return X

    def _fit_landmarks(self, X, xp):
        n_samples = X.shape[0]
        if self.n_landmarks > n_samples:
            raise ValueError(
                f"n_landmarks={self.n_landmarks} exceeds the number of samples "
                f"(n_samples={n_samples}); use at most n_samples landmarks."
            )
        Z = self._choose_landmarks(X, xp)
        K_mm = self._kernel(Z, Z, xp)
        # Nyström feature map phi(x) = k(x, Z) K_mm^{-1/2}, computed by eigendecomposition.
        w, U = xp.linalg.eigh(K_mm)
        keep = w > (xp.max(w) * 1e-10)
        U, w = U[:, keep], w[keep]
        normalizer = U / xp.sqrt(w)[None, :]
        K_nm = self._kernel(X, Z, xp)
        self._check_kernel_reach(K_nm, xp)
        Phi = K_nm @ normalizer
        mean = xp.mean(Phi, axis=0)
        Phi = Phi - mean[None, :]
        evals, evecs = xp.linalg.eigh(Phi.T @ Phi)
        evals, evecs = self._select_components(evals, evecs, xp, n_samples)
        # eigh's signs depend on the backend (and on the basis U); fixing them on the map
        # from kernel values gives the same components on NumPy, torch and CuPy.
        components = _flip_signs(normalizer @ evecs, xp)
        evecs = evecs * xp.sign(xp.sum(components * (normalizer @ evecs), axis=0))[None, :]
        self.landmarks_ = Z
        self.landmark_components_ = components
        self._landmark_offset = mean @ evecs
        self._store_eigenvalues(evals, xp)
        if self.fit_inverse_transform:
            self._fit_landmark_inverse(Z, xp)

    def _choose_landmarks(self, X, xp):
        rng = check_random_state(self.random_state)
        if self.landmark_method == "uniform":
            idx = np.sort(rng.choice(X.shape[0], self.n_landmarks, replace=False))
        else:
            _, idx = kmeans_plusplus(to_numpy(X), self.n_landmarks, random_state=rng)
        return xp.take(X, from_numpy(np.asarray(idx), xp, array_device(X)), axis=0)

    def _fit_exact_array(self, X, xp):
        K = self._kernel(X, X, xp)
        self._check_kernel_reach(K, xp)
        n = K.shape[0]
        col_mean = xp.mean(K, axis=0)
        all_mean = xp.mean(col_mean)
        Kc = K - col_mean[None, :] - col_mean[:, None] + all_mean
        evals, evecs = xp.linalg.eigh(Kc)
        evals, evecs = self._select_components(evals, evecs, xp, n)
        evecs = _flip_signs(evecs, xp)
        self.X_fit_ = X
        self.eigenvectors_ = evecs
        self._exact_col_mean = col_mean
        self._exact_all_mean = all_mean
        self._store_eigenvalues(evals, xp)

    def _select_components(self, evals, evecs, xp, n_samples):
        """Top components in decreasing order, dropping null directions like scikit-learn."""
        order = xp.flip(xp.argsort(evals), axis=0)
        evals, evecs = xp.take(evals, order, axis=0), xp.take(evecs, order, axis=1)
        evals = xp.where(evals > 0, evals, xp.zeros_like(evals))
        k = evals.shape[0] if self.n_components is None else min(self.n_components, n_samples)
        evals, evecs = evals[:k], evecs[:, :k]
        if evecs.shape[1] < k:
            # Landmark mode has at most rank(K_mm) directions; like the exact method, the
            # components beyond the rank are null columns rather than missing ones.
            evecs = xp.concat([evecs, xp.zeros((evecs.shape[0], k - evecs.shape[1]),
                                               dtype=evecs.dtype, device=array_device(evecs))],
                              axis=1)
            evals = xp.concat([evals, xp.zeros(k - evals.shape[0], dtype=evals.dtype,
                                               device=array_device(evals))])
        if self.remove_zero_eig or self.n_components is None:
            scale = xp.max(evals) if evals.shape[0] else 0.0
            positive = evals > scale * 1e-12
            evals, evecs = evals[positive], evecs[:, positive]
        return evals, evecs

    def _store_eigenvalues(self, evals, xp):
        self.eigenvalues_ = to_numpy(evals).astype(np.float64)

    def _fit_landmark_inverse(self, Z, xp):
        # Kernel ridge from the landmarks' embeddings back to the landmarks (as scikit-learn
        # does on all samples), so memory stays O(m²).
        Z_t = self._transform_array(Z, xp)
        K = self._kernel(Z_t, Z_t, xp)
        eye = xp.eye(K.shape[0], dtype=K.dtype, device=array_device(K))
        self.dual_coef_ = xp.linalg.solve(K + self.alpha * eye, Z)
        self.X_transformed_fit_ = Z_t

    # -- transforming ----------------------------------------------------------------------

    def transform(self, X):
        """Project X on the kernel principal components.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy, torch or CuPy; the result is in the same namespace.

        Returns
        -------
        X_new : array of shape (n_samples, n_components)
        """
        check_is_fitted(self, "eigenvalues_")
        if self._fit_mode == "sklearn":
            if foreign_namespace(X) is not None:
                raise TypeError(
                    "This KernelPCA was fitted on NumPy data with device=None; transform "
                    "NumPy data, or fit with device= to transform device arrays."
                )
            return super().transform(X)
        X_c, xp, _ = self._to_compute_array(X, reset=False)
        return _to_namespace(self._transform_array(X_c, xp), X)

    def _transform_array(self, X, xp):
        if self._fit_mode == "landmarks":
            return self._kernel(X, self.landmarks_, xp) @ self.landmark_components_ \
                - self._landmark_offset[None, :]
        K = self._kernel(X, self.X_fit_, xp)
        Kc = K - self._exact_col_mean[None, :] - xp.mean(K, axis=1)[:, None] \
            + self._exact_all_mean
        evals = from_numpy(self.eigenvalues_.astype(np.float64), xp, array_device(K))
        evals = xp.astype(evals, K.dtype)
        scale = xp.where(evals > 0, 1 / xp.sqrt(xp.where(evals > 0, evals, 1.0)), 0.0)
        return Kc @ (self.eigenvectors_ * scale[None, :])

    def _check_inverse_transform(self):
        if not self.fit_inverse_transform:
            raise AttributeError("inverse_transform needs fit_inverse_transform=True; set it "
                                 "and fit again.")
        return True

    # Absent (hasattr False) without fit_inverse_transform, so generic code (scikit-learn's
    # estimator checks included) does not call a method that can only fail.
    @available_if(_check_inverse_transform)
    def inverse_transform(self, X):
        """Map points of the components' space back to the input space (pre-image).

        Needs ``fit_inverse_transform=True``.
        """
        if self._fit_mode == "sklearn":
            return super().inverse_transform(X)
        X = check_input(X, "X")
        n_components = self.X_transformed_fit_.shape[1]
        if X.shape[1] != n_components:
            raise ValueError(
                f"inverse_transform maps points of the {n_components} components' space "
                f"back; got X of shape {tuple(X.shape)}. Pass the output of transform."
            )
        xp, dev = array_namespace(self.dual_coef_), array_device(self.dual_coef_)
        X_c = from_numpy(np.asarray(to_numpy(X), dtype=np.float64), xp, dev)
        X_c = xp.astype(X_c, self.dual_coef_.dtype)
        K = self._kernel(X_c, self.X_transformed_fit_, xp)
        return _to_namespace(K @ self.dual_coef_, X)

    # -- kernels ---------------------------------------------------------------------------

    def _get_kernel(self, X, Y=None):
        """scikit-learn's kernel (exact NumPy mode). Its RBF expansion overflows to NaN on
        coordinates beyond about 1e154; the distance engine, which scales them, then
        computes it instead. The training kernel (Y None) is checked for reach."""
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            K = super()._get_kernel(X, Y)
        if self.kernel == "rbf":
            if not np.all(np.isfinite(K)):
                K = self._kernel(X, X if Y is None else Y, np)
            if Y is None:
                self._check_kernel_reach(K, np)
        return self._check_kernel_finite(K, np, X)

    def _check_kernel_finite(self, K, xp, X):
        """``K``, or a ValueError when it holds inf or NaN: dot products of samples of
        magnitude beyond about 1e154 overflow ('linear', 'poly', 'sigmoid'), and no
        component can be computed from such a kernel."""
        if bool(xp.all(xp.isfinite(K))):
            return K
        magnitude = float(xp.max(xp.abs(X)))
        kernel = self.kernel if isinstance(self.kernel, str) else "callable"
        raise ValueError(
            f"The {kernel} kernel of these samples is not finite: it overflows float64 "
            f"(the largest feature has magnitude {magnitude:.3g}). Scale the data first, "
            "e.g. with sklearn.preprocessing.StandardScaler."
        )

    def _check_kernel_reach(self, K, xp):
        """Refuse an RBF kernel K(samples, B) (B: the samples, or the landmarks) with no
        more nonzero entries than B has rows: each row of B then reaches only itself,
        ``exp(-gamma ||x - y||²)`` underflows to 0 for every other pair, and the kernel
        (the identity) carries nothing to find."""
        if self.kernel != "rbf" or K.shape[0] < 2:
            return
        if int(xp.sum(xp.astype(K != 0, xp.int64))) > K.shape[1]:
            return
        reach = math.sqrt(-math.log(np.finfo(np.float64).tiny)) / math.sqrt(self.gamma_)
        raise ValueError(
            "The RBF kernel of these samples is the identity matrix: every pair of distinct "
            f"samples (or landmarks) lies farther apart than sqrt(708 / gamma) = {reach:.3g} "
            f"(gamma={self.gamma_:.3g}), so exp(-gamma * ||x - y||^2) underflows to 0 and "
            "kernel PCA has nothing to find. Scale the data first (e.g. with "
            "sklearn.preprocessing.StandardScaler) or use a smaller gamma."
        )

    def _kernel(self, X, Y, xp):
        """The kernel matrix k(X, Y), computed in namespace ``xp`` via the distance engine."""
        if self.kernel == "rbf":
            # exp(-(sqrt(gamma) d)²): right wherever gamma d² is finite, even if d² is
            # not; where gamma d² overflows the kernel is 0.
            with np.errstate(over="ignore"):
                return xp.exp(-((math.sqrt(self.gamma_) * pairwise_distances(X, Y)) ** 2))
        if self.kernel == "cosine":
            return 1 - pairwise_distances(X, Y, metric="cosine")
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            dot = X @ Y.T
            if self.kernel == "linear":
                K = dot
            elif self.kernel == "poly":
                K = (self.gamma_ * dot + self.coef0) ** self.degree
            else:
                K = xp.tanh(self.gamma_ * dot + self.coef0)
        return self._check_kernel_finite(K, xp, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self.n_landmarks is None and self.device is None
        return tags


def _check_square_kernel(K):
    shape = check_array(K, accept_sparse="csr").shape
    if shape[0] != shape[1]:
        raise ValueError(
            "With kernel='precomputed', X must be the square training kernel K(X, X) of "
            f"shape (n_samples, n_samples); got shape {shape}."
        )
    # eigh reads one triangle only: an asymmetric K would be decomposed as another kernel.
    K = check_array(K, accept_sparse="csr")
    asymmetry = abs(K - K.T).max()
    if asymmetry > 1e-8 * max(abs(K).max(), np.finfo(np.float64).tiny):
        raise ValueError(
            "With kernel='precomputed', X must be a symmetric kernel K(X, X); got "
            f"max |K - K.T| = {asymmetry:.3g}. Pass a kernel matrix, e.g. (K + K.T) / 2."
        )


def _flip_signs(V, xp):
    """``V`` with each column's largest-magnitude entry positive (scikit-learn's convention,
    so the signs do not depend on the eigensolver); null columns stay null."""
    rows = xp.argmax(xp.abs(V), axis=0)
    at_max = xp.arange(V.shape[0], device=array_device(V))[:, None] == rows[None, :]
    signs = xp.sign(xp.sum(xp.where(at_max, V, 0.0), axis=0))
    return V * xp.where(signs == 0, 1.0, signs)[None, :]


def _to_namespace(a, X_in):
    """``a`` in the namespace of the caller's input ``X_in``: NumPy for NumPy (or lists),
    else ``X_in``'s namespace, moved to ``X_in``'s device when computed in another one
    (a model fitted on NumPy given torch input)."""
    xp_out = foreign_namespace(X_in)
    if xp_out is None:
        return to_numpy(a)
    if foreign_namespace(a) is xp_out:
        return a
    return from_numpy(to_numpy(a), xp_out, array_device(X_in))

