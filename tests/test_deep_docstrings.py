"""The losses' docstrings (what ``help()`` and the API pages show), and what they declare.

Most losses' ``Examples`` section is written once (``skmetric.deep._docstrings``) and
appended when the class is defined; these tests check that every registered loss still
documents its parameters and ends with an example that doctest finds and that passes. Also
what the losses declare once instead of checking in each ``compute_loss``: the inputs they
refuse (``takes_ref_emb``, ``takes_indices_tuple``, ``requires_unit_norm``), refused by
``BaseLoss`` with one message.
"""

import doctest
import inspect

import pytest

pytest.importorskip("torch")

from skmetric.deep import _docstrings  # noqa: E402
from skmetric.deep.losses import LOSSES, BaseLoss, ContrastiveLoss, PNPLoss  # noqa: E402

PAIR_LOSSES = sorted((name, cls) for name, cls in LOSSES.items() if not cls.requires_classes)
BASE_LOSSES = [(name, cls) for name, cls in PAIR_LOSSES if issubclass(cls, BaseLoss)]


def _run_examples(obj):
    """Run the doctests of ``obj``'s own docstring; return (failed, attempted)."""
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder(recurse=False).find(obj, obj.__name__,
                                                          globs={}):
        runner.run(test, out=lambda text: None)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("cls", sorted(LOSSES.values(), key=lambda cls: cls.__name__),
                         ids=lambda cls: cls.__name__)
def test_docstring_has_parameters_and_a_passing_example(cls):
    doc = inspect.getdoc(cls)
    # (SphereFaceLoss documents none of its own: it takes LargeMarginSoftmaxLoss's.)
    assert "\nParameters\n----------\n" in doc or cls.__name__ == "SphereFaceLoss"
    assert "\nExamples\n--------\n>>> " in doc, f"{cls.__name__} has no Examples section"
    failed, attempted = _run_examples(cls)
    assert attempted >= 2 and failed == 0, (cls.__name__, attempted, failed)


def test_generated_example_reads_as_written_by_hand():
    doc = inspect.getdoc(ContrastiveLoss)
    assert doc.endswith(
        "Mapping\", CVPR 2006.\n\n"
        "Examples\n--------\n"
        ">>> import torch\n"
        ">>> from skmetric.deep.losses import ContrastiveLoss\n"
        ">>> emb = torch.randn(8, 4, requires_grad=True)\n"
        ">>> ContrastiveLoss(neg_margin=1.0)(emb, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])).ndim\n"
        "0"
    )
    # Indented as the rest of the raw docstring, so numpydoc reads one section.
    assert "\n    Examples\n    --------\n    >>> import torch\n" in ContrastiveLoss.__doc__
    assert '>>> PNPLoss(variant="Ds")(emb' in PNPLoss.__doc__


def test_generated_example_fails_when_its_claim_is_wrong():
    # The example is a real doctest: a loss that is not a scalar fails it.
    @_docstrings.loss_example()
    class VectorLoss(BaseLoss):
        """A loss that forgets to reduce.

        Parameters
        ----------
        distance : str
        """

        def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
            return embeddings.sum(1)

    globs = {"VectorLoss": VectorLoss}
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder(recurse=False).find(VectorLoss, globs=globs):
        test.examples = [ex for ex in test.examples if "import VectorLoss" not in ex.source]
        runner.run(test, out=lambda text: None)
    failed, attempted = runner.summarize(verbose=False)
    assert (failed, attempted) == (1, 3)


def test_a_class_with_its_own_example_is_refused():
    with pytest.raises(ValueError, match="writes its own Examples section"):
        @_docstrings.loss_example()
        class Documented(BaseLoss):
            """Summary.

            Examples
            --------
            >>> 1
            1
            """


# What a loss declares it does not take (``takes_ref_emb``, ``takes_indices_tuple``,
# ``requires_unit_norm``) is refused by BaseLoss with one message, for every loss.
@pytest.mark.parametrize("cls", [cls for _, cls in BASE_LOSSES], ids=lambda cls: cls.__name__)
def test_declared_limits_are_refused_with_what_to_do(cls):
    import torch

    emb, labels = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = cls()
    pairs = (torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([2]))
    if not cls.takes_ref_emb:
        with pytest.raises(ValueError, match=f"{cls.__name__} .* ref_emb is not supported"):
            loss(emb, labels, ref_emb=emb, ref_labels=labels)
    if not cls.takes_indices_tuple:
        with pytest.raises(ValueError, match="Use it without a miner"):
            loss(emb, labels, indices_tuple=pairs)
    if cls.requires_unit_norm:
        with pytest.raises(ValueError, match=f"{cls.__name__} .* keep normalize=True"):
            cls(normalize=False)
    assert loss(emb, labels).ndim == 0


def test_the_limits_are_declared_where_the_losses_need_them():
    refused = {name: (cls.takes_ref_emb, cls.takes_indices_tuple, cls.requires_unit_norm)
               for name, cls in BASE_LOSSES}
    assert {n for n, (ref, _, _) in refused.items() if not ref} == {
        "fast_ap", "histogram", "instance", "npairs", "pnp", "ranked_list", "smooth_ap"}
    assert {n for n, (_, tuples, _) in refused.items() if not tuples} == {
        "instance", "pnp", "ranked_list"}
    assert {n for n, (_, _, unit) in refused.items() if unit} == {
        "angular", "dynamic_soft_margin", "fast_ap"}
