"""The private compute layer of the learners: where to compute and how to optimise.

``_backend`` resolves once per ``fit`` the namespace, device and dtype a learner computes
in; ``_lbfgs`` drives scipy's L-BFGS on an objective evaluated on that backend.
"""
