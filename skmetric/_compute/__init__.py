"""skmetric's private compute layer, below the estimators and the public functions.

``_backend`` resolves once per ``fit`` the namespace, device and dtype a learner computes
in; ``_lbfgs`` drives scipy's L-BFGS on an objective evaluated on that backend;
``_arrays`` is the one checker of array input (NumPy, torch, CuPy, array-api-strict);
``_engine`` (with ``_knn``, ``_knn_topk``, ``_faiss``, ``_blocks``, ``_numerics``) is the
distance engine that ``skmetric.distances``, ``skmetric.neighbors`` and ``skmetric.metrics``
call; ``_inner_cv`` and ``_toward_prior`` are the learners' ``prior_strength`` (a penalty or
a geodesic toward the starting map) and its 'auto' choice by inner cross-validation.
"""
