"""Docstring fragments written once and filled into every docstring that shares them.

A docstring line that holds only ``{name}`` is replaced by the fragment ``name``, indented
as that line: the runtime ``__doc__`` (what ``help``, numpydoc and doctests read) is
complete, while a parameter, attribute or section that several classes or functions share
is written in one place. ``fill_doc`` is the decorator; the fragments below are those of
the Mahalanobis learners (the metrics keep theirs in their own modules).
"""

import re
import textwrap

_PLACEHOLDER = re.compile(r"^([ \t]*)\{(\w+)\}[ \t]*\n", re.MULTILINE)


def fill_doc(**fragments):
    """Decorator: each docstring line ``{name}`` becomes ``fragments[name]``.

    A fragment is written at any indentation (its common indentation is removed) and is
    indented as the line it replaces; it may hold placeholders itself (filled from the same
    fragments), and an empty fragment removes its line. Placeholders of other names are
    left for another ``fill_doc``.
    """
    texts = {name: textwrap.dedent(text.lstrip("\n").rstrip()) for name, text in fragments.items()}

    def fill(doc):
        return _PLACEHOLDER.sub(replace, doc)

    def replace(match):
        indent, name = match.groups()
        if name not in texts:
            return match.group(0)
        if not texts[name]:
            return ""
        return textwrap.indent(fill(texts[name] + "\n"), indent)

    def decorate(obj):
        obj.__doc__ = fill(obj.__doc__)
        return obj
    return decorate


#: ``X`` and ``y`` of ``fit(X, y)``, for the learners fitted on samples and class labels.
FIT_X_Y = """
X : array-like of shape (n_samples, n_features)
    Training samples (or 1-D indices into ``preprocessor``). A learner with a ``device``
    parameter computes in torch on the device of a torch tensor.
y : array-like of shape (n_samples,)
    Class labels.
"""

#: The head of the Attributes section of a learner of a full metric ``M = L.T @ L``.
METRIC_ATTRIBUTES = """
Attributes
----------
components_ : ndarray of shape (n_features, n_features)
    The linear map L with ``L.T @ L = M``.
"""

#: ``init`` of the learners of a linear map initialised from the data (NCA, LMNN).
LINEAR_INIT = """
init : {'auto', 'pca', 'lda', 'identity', 'random'} or ndarray of shape \
        (n_components, n_features), default='auto'
    Initial linear map. 'auto' picks 'lda' when ``n_components`` fits within the class
    count, else 'pca' when it reduces the dimension, else 'identity'.
"""

#: The attributes that scikit-learn's ``validate_data`` sets on a learner fitted on samples.
FEATURES_IN = """
n_features_in_ : int
    Number of features seen during fit.
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of features seen during fit, when X has string feature names.
"""

#: That of a learner fitted on tuples (arrays of 3 dimensions: no feature names).
N_FEATURES_IN = """
n_features_in_ : int
    Number of features seen during fit.
"""

#: The last attributes of a learner fitted on labelled pairs (``PairsClassifierMixin``).
PAIRS_FITTED = """
threshold_ : float
    Pairs with a learned distance at most ``threshold_`` are predicted similar.
classes_ : ndarray of shape (2,)
    The (dissimilar, similar) labels ``predict`` returns, in the convention of the labels
    given to ``fit``: ``[-1, 1]``, ``[0, 1]`` or ``[False, True]``.
n_features_in_ : int
    Number of features seen during fit.
"""

#: ``n_constraints`` of the ``*_Supervised`` variants that draw pairs from the labels.
N_PAIRS = """
n_constraints : int, default=None
    Number of similar and of dissimilar pairs to draw; None means
    ``20 * n_classes**2``.
"""

#: ``pairs`` and ``y`` of a fit on labelled pairs.
FIT_PAIRS = """
pairs : array-like of shape (n_pairs, 2, n_features) or (n_pairs, 2)
    Pairs of samples, or pairs of indices into ``preprocessor``.
y : array-like of shape (n_pairs,)
    +1 for similar pairs, -1 for dissimilar ones (1 and 0 are accepted too).
"""

#: The end of a fit on labelled pairs: calibration, then what it returns.
FIT_PAIRS_END = """
calibration_params : dict, default=None
    Keyword arguments of :meth:`calibrate_threshold`.

Returns
-------
self : object
"""
