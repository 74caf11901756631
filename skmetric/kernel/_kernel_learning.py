"""Kernelised metric learning by the KPCA trick: a Mahalanobis learner after kernel PCA."""

from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ._kernel_pca import KernelPCA


def make_kernel_learner(learner, *, kernel="rbf", n_components=None, n_landmarks=None,
                        **kpca_params):
    """A kernelised metric learner: ``learner`` applied after (approximate) kernel PCA.

    Learning a linear metric on the kernel principal components is equivalent to learning
    a metric in the kernel's feature space restricted to the span of the data (the KPCA
    trick of Chatpatanasiri et al.), so any Mahalanobis learner becomes a kernel learner:
    kernel NCA, kernel LMNN, kernel ITML_Supervised... With ``n_landmarks`` the kernel PCA is
    the Nyström approximation and the whole fit stays O(n·m²).

    Parameters
    ----------
    learner : estimator
        A metric learner (any transformer fitted on ``X, y``); it is cloned.
    kernel : str, default='rbf'
        Kernel of the :class:`KernelPCA` step ('linear', 'rbf', 'poly', 'sigmoid', 'cosine').
    n_components : int, default=None
        Kernel principal components passed to the learner (None: all non-null ones).
    n_landmarks : int, default=None
        Nyström landmarks for data too large for an n×n kernel.
    **kpca_params
        Other :class:`KernelPCA` parameters (``gamma``, ``degree``, ``device``...).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``'kpca'`` and ``'learner'``; tune them in GridSearchCV as ``kpca__gamma``,
        ``learner__n_components`` and so on.

    References
    ----------
    .. [1] R. Chatpatanasiri, T. Korsrilabutr, P. Tangchanachaianan, B. Kijsirikul. "A new
       kernelization framework for Mahalanobis distance learning algorithms",
       Neurocomputing 73, 2010.

    Examples
    --------
    >>> from sklearn.datasets import make_circles
    >>> from skmetric import NCA, make_kernel_learner
    >>> X, y = make_circles(n_samples=200, factor=0.4, noise=0.05, random_state=0)
    >>> knca = make_kernel_learner(NCA(n_components=1, random_state=0), gamma=2.0,
    ...                            n_components=20)
    >>> knca.fit(X, y).transform(X).shape
    (200, 1)
    """
    kpca = KernelPCA(n_components=n_components, kernel=kernel, n_landmarks=n_landmarks,
                     **kpca_params)
    return Pipeline([("kpca", kpca), ("learner", clone(learner))])
