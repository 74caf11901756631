"""Kernel methods: kernel PCA (exact, Nyström, on a device) and kernelised metric learners.

Each name is also importable from the package root (``from skmetric import KernelPCA``).
"""

from ._kernel_learning import make_kernel_learner
from ._kernel_pca import KernelPCA

__all__ = ["KernelPCA", "make_kernel_learner"]
