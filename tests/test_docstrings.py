"""Docstrings filled from shared fragments (skmetric/_docstrings.py) are complete at run time.

``help``, numpydoc (the API pages) and the doctests read ``__doc__``: a forgotten ``fill_doc``
would leave a ``{name}`` line there instead of the parameters or attributes it stands for.
"""

import inspect
import re

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

import skmetric
from skmetric._base import PairsClassifierMixin, _TupleLearnerMixin
from skmetric._docstrings import fill_doc

LEARNERS = [
    skmetric.NCA, skmetric.LMNN, skmetric.LFDA, skmetric.MLKR, skmetric.RCA,
    skmetric.RCA_Supervised, skmetric.ITML, skmetric.ITML_Supervised, skmetric.SDML,
    skmetric.SDML_Supervised, skmetric.MMC, skmetric.MMC_Supervised, skmetric.LSML,
    skmetric.LSML_Supervised, skmetric.SCML, skmetric.SCML_Supervised,
]
_UNFILLED = re.compile(r"^\s*\{\w+\}\s*$", re.MULTILINE)


def test_fill_doc_indents_nests_and_drops_empty_fragments():
    @fill_doc(param="""
        a : int
            {meaning}
    """, meaning="The a.", nothing="")
    def f():
        """Summary.

        Parameters
        ----------
        {param}
        {nothing}
        {other}
        """

    assert f.__doc__ == ("Summary.\n\n        Parameters\n        ----------\n"
                         "        a : int\n            The a.\n        {other}\n        ")


@pytest.mark.parametrize("learner", LEARNERS, ids=lambda c: c.__name__)
def test_learner_docstrings_are_complete(learner):
    for doc in (learner.__doc__, learner.fit.__doc__):
        assert not _UNFILLED.search(doc), f"{learner.__name__}: unfilled placeholder in\n{doc}"
    parsed = ClassDoc(learner, config={"show_class_members": False})
    attributes = [p.name for p in parsed["Attributes"]]
    assert attributes[0] == "components_" and "n_features_in_" in attributes
    assert ("threshold_" in attributes) == issubclass(learner, PairsClassifierMixin)
    # Learners fitted on samples (not on 3-D tuples) also record the feature names.
    assert ("feature_names_in_" in attributes) != issubclass(learner, _TupleLearnerMixin)
    assert parsed["References"] and parsed["Examples"]
    # fit documents every parameter of its signature, in order, and returns the learner.
    fit = FunctionDoc(learner.fit)
    signature = list(inspect.signature(learner.fit).parameters)[1:]
    assert [p.name for p in fit["Parameters"]] == signature
    assert [p.name for p in fit["Returns"]] == ["self"]
