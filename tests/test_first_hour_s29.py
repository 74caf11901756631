"""What a new user meets in the first hour: metric-learn's old names, typos, migration traps."""

import copy
import pickle
import re
import warnings

import numpy as np
import pytest
from estimator_registry import ESTIMATORS
from sklearn.base import clone
from sklearn.datasets import load_wine
from sklearn.model_selection import KFold, cross_val_score
from sklearn.preprocessing import MinMaxScaler
from test_docs import PAGES, ROOT, _needed_extras, _python_blocks

import skmetric
from skmetric import (
    ITML,
    LFDA,
    LMNN,
    MMC,
    NCA,
    ITML_Supervised,
    KernelPCA,
    MetricKNeighborsClassifier,
    MMC_Supervised,
    RCA_Supervised,
    SDML_Supervised,
    make_retrieval_scorer,
)


@pytest.mark.parametrize("cls, old, new", [
    (ITML_Supervised, "num_constraints", "n_constraints"),
    (SDML_Supervised, "num_constraints", "n_constraints"),
    (ITML, "convergence_threshold", "tol"),
    (MMC_Supervised, "convergence_threshold", "tol"),
    (RCA_Supervised, "num_chunks", "n_chunks"),
    (NCA, "num_dims", "n_components"),
    (LFDA, "num_dims", "n_components"),
    (ITML, "A0", "prior"),
    (MMC, "A0", "init"),
])
def test_metric_learn_old_name_is_refused_naming_the_new_one(cls, old, new):
    # metric-learn 0.7 still takes these names (with a warning); Python's bare
    # "unexpected keyword argument" would leave the user to find the new name.
    with pytest.raises(TypeError, match=rf"'{old}' \(metric-learn's old name for {new}\); "
                       rf"pass {new}= instead\."):
        cls(**{old: 3})


@pytest.mark.parametrize("make, meant", [
    (lambda: NCA(n_component=2), "n_components"),
    (lambda: LMNN(n_neighbours=3), "n_neighbors"),
    (lambda: ITML_Supervised(n_constraint=100), "n_constraints"),
    (lambda: MetricKNeighborsClassifier(n_neighbours=3), "n_neighbors"),
    (lambda: KernelPCA(n_component=2), "n_components"),
])
def test_misspelt_keyword_names_the_closest_parameter(make, meant):
    with pytest.raises(TypeError, match=rf"unexpected keyword argument '\w+'; did you mean "
                       rf"{meant}\?$"):
        make()


def test_unknown_keyword_without_a_close_match_lists_the_parameters():
    with pytest.raises(TypeError) as info:
        LMNN(use_pca=False)  # removed from metric-learn long ago, no current equivalent
    message = str(info.value)
    assert message.startswith("LMNN.__init__() got an unexpected keyword argument 'use_pca'.")
    assert "Its parameters: init, n_neighbors, min_iter, max_iter, learn_rate" in message
    assert message.endswith("prior_strength.")


@pytest.mark.parametrize("name", sorted(n for n in ESTIMATORS if "Embedder" not in n))
def test_every_classical_estimator_explains_an_unknown_keyword(name):
    # An estimator left without the check would raise Python's bare message, which names
    # neither the parameters nor the class (only its __init__'s qualified name).
    cls = getattr(skmetric, name)
    with pytest.raises(TypeError, match=rf"^{name}\.__init__\(\) got an unexpected keyword "
                       r"argument 'zz_not_a_parameter'\. Its parameters: "):
        cls(zz_not_a_parameter=1)


def test_valid_construction_clone_pickle_and_subclasses_are_unaffected():
    X = np.random.RandomState(0).randn(30, 3)
    y = np.arange(30) % 2
    nca = NCA(n_components=2, max_iter=5, random_state=0)
    assert clone(nca).get_params() == nca.get_params()
    nca.fit(X, y)
    for again in (pickle.loads(pickle.dumps(nca)), pickle.loads(pickle.dumps(nca, protocol=0)),
                  copy.deepcopy(nca)):  # __new__ is called without the keywords here
        np.testing.assert_array_equal(again.transform(X), nca.transform(X))
    assert NCA("identity", 2).init == "identity"  # positional arguments pass through

    class Mine(NCA):  # a user's subclass adds a parameter: it is accepted
        def __init__(self, shrink=1.0, **kwargs):
            super().__init__(**kwargs)
            self.shrink = shrink

    assert Mine(shrink=0.5, max_iter=3).max_iter == 3  # **kwargs: no check of its own

    class Strict(NCA):
        def __init__(self, shrink=1.0, max_iter=100):
            super().__init__(max_iter=max_iter)
            self.shrink = shrink

    assert Strict(shrink=0.5).shrink == 0.5
    with pytest.raises(TypeError, match="Strict.__init__.*'shrnk'; did you mean shrink?"):
        Strict(shrnk=0.5)


def test_score_pairs_points_to_pair_distance_not_its_negation():
    X = np.random.RandomState(0).randn(20, 3)
    itml = ITML_Supervised(max_iter=5, random_state=0).fit(X, np.arange(20) % 2)
    # metric-learn's score_pairs returned distances; pair_score is their negation, so a
    # blind rename would invert every comparison. The error says which is which.
    assert not hasattr(itml, "score_pairs")
    with pytest.raises(AttributeError, match=r"use pair_distance\(pairs\) for the same "
                       r"values, or pair_score\(pairs\), their negatives"):
        itml.score_pairs  # noqa: B018
    pairs = np.stack([X[:4], X[4:8]], axis=1)
    np.testing.assert_allclose(itml.pair_score(pairs), -itml.pair_distance(pairs))


def test_loss_and_miner_keyword_typos_name_the_parameter():
    pytest.importorskip("torch")
    from skmetric.deep import losses, miners

    with pytest.raises(TypeError, match=r"TripletMarginLoss got an unexpected keyword "
                       r"argument 'margni'; did you mean margin\? Its parameters are"):
        losses.TripletMarginLoss(margni=0.1)
    with pytest.raises(TypeError, match="did you mean epsilon?"):
        miners.MultiSimilarityMiner(epsilom=0.1)
    # pytorch-metric-learning's own names still work (translated, not refused).
    assert losses.NormFaceLoss(num_classes=3, embedding_size=4, temperature=0.5).scale == 2.0


# -- documented outputs ------------------------------------------------------------------

_TRUTH_COMMENT = re.compile(r"^(\s*)print\((.*)\)\s*#\s*(True|False)\b")


def _blocks_with_truth_comments():
    params = []
    for page in PAGES:
        for line, code in _python_blocks(page):
            if any(_TRUTH_COMMENT.match(text) for text in code.splitlines()):
                params.append(pytest.param(page, line, code,
                                           id=f"{page.name}:{line}"))
    return params


@pytest.mark.parametrize("page, line, code", _blocks_with_truth_comments())
def test_docs_print_commented_true_or_false_prints_it(page, line, code):
    # tests/test_docs.py runs every block; this also holds a `print(x)  # True` to its word
    # (supervised.md once said LFDA's prior_strength=inf map had orthonormal rows: False).
    for module in _needed_extras(code):
        pytest.importorskip(module)
    seen = []

    def check(value, expected, where):
        seen.append(where)
        assert bool(value) is (expected == "True"), f"{where} prints {value!r}, not {expected}"

    lines = [_TRUTH_COMMENT.sub(rf"\1__check(\2, '\3', '{page.name}:{line + i}')", text)
             for i, text in enumerate(code.splitlines())]
    exec(compile("\n" * (line - 1) + "\n".join(lines), str(page), "exec"),
         {"__check": check, "__name__": "__docs__"})
    assert seen


def test_sdml_ill_posed_warning_names_a_balance_param_that_is_well_posed():
    # The warning used to suggest prior='covariance', which on scaled wine floors more
    # eigenvalues (7 against 4), not fewer; it now gives the largest balance_param that
    # keeps the problem well posed with the prior in use, rounded down.
    X, y = load_wine(return_X_y=True)
    X = MinMaxScaler().fit_transform(X)

    def sdml_warnings(**params):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            SDML_Supervised(random_state=0, **params).fit(X, y)
        return [str(w.message) for w in caught if str(w.message).startswith("SDML:")]

    for prior in ("identity", "covariance"):
        (message,) = sdml_warnings(prior=prior)
        assert "Lower balance_param (now 0.5) below " in message
        assert "prior='covariance'" not in message
        shown = float(re.search(r"below (\S+), where that matrix stays positive definite "
                                r"with this prior, for a well-posed problem\.$", message)[1])
        assert sdml_warnings(prior=prior, balance_param=shown) == []
        # Rounding down to two digits loses less than 10 %: 1.2 times is past the bound.
        assert len(sdml_warnings(prior=prior, balance_param=1.2 * shown)) == 1


def test_lmnn_learn_rate_without_its_solver_warns_instead_of_being_ignored():
    # metric-learn's LMNN(k=3, learn_rate=1e-6): k is translated (with a FutureWarning),
    # but learn_rate only steers solver='gd'; under the default L-BFGS it changed nothing,
    # silently.
    X, y = load_wine(return_X_y=True)
    X = MinMaxScaler().fit_transform(X)
    params = dict(max_iter=5, min_iter=0, random_state=0)
    with pytest.warns(UserWarning, match=r"learn_rate is the step size of solver='gd'.*"
                      r"Pass solver='gd' to use it\.") as caught:
        with pytest.warns(FutureWarning, match="k was renamed n_neighbors"):
            tuned = LMNN(k=3, learn_rate=1e-6, **params).fit(X, y)
    assert len([w for w in caught if "learn_rate" in str(w.message)]) == 1
    np.testing.assert_array_equal(tuned.components_, LMNN(**params).fit(X, y).components_)
    for quiet in (LMNN(**params), LMNN(solver="gd", learn_rate=1e-6, **params)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            quiet.fit(X, y)


@pytest.mark.parametrize("name", ["precision_at_1", "map_at_r", "recall_at_k"])
def test_retrieval_scorer_refuses_a_single_class_fold(name):
    # cross_val_score(transformer, X, y, scoring=...) splits a transformer with unshuffled
    # KFold; on sorted labels (wine) three of five test folds hold one class, where every
    # neighbour is relevant: the scorer returned a perfect 1.0 for them, silently.
    X, y = load_wine(return_X_y=True)
    X = MinMaxScaler().fit_transform(X)
    scorer = make_retrieval_scorer(name, **({"k": 5} if name == "recall_at_k" else {}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = cross_val_score(LFDA(), X, y, scoring=scorer)
    single = [len(np.unique(y[test])) == 1 for _, test in KFold(5).split(X)]
    assert single == [True, False, True, False, True]
    np.testing.assert_array_equal(np.isnan(scores), single)
    assert np.all((scores[~np.isnan(scores)] > 0) & (scores[~np.isnan(scores)] <= 1))
    assert any("all have class 0" in str(w.message) and "StratifiedKFold" in str(w.message)
               for w in caught)
    lfda = LFDA().fit(X, y)
    with pytest.raises(ValueError, match=rf"^The '{name}' scorer got a fold whose samples "
                       r"all have class 2, .* cv=StratifiedKFold\(5, shuffle=True"):
        scorer(lfda, X[y == 2], y[y == 2])
    assert 0 < scorer(lfda, X, y) <= 1  # folds of several classes are scored as before


def test_every_name_of_the_distances_table_is_importable_from_skmetric():
    # docs/distances.md: "All are importable from `skmetric` as well" (the house rule for
    # public names); pairwise_distances_chunked was only in skmetric.distances.
    text = (ROOT / "docs" / "distances.md").read_text(encoding="utf-8")
    table = text[text.index("| function / class |"):text.index("All are importable")]
    names = re.findall(r"^\| `(\w+)\(", table, flags=re.M)
    assert len(names) == 5 and "pairwise_distances_chunked" in names
    import skmetric.distances
    import skmetric.neighbors

    for name in names:
        assert name in skmetric.__all__
        home = skmetric.distances if "distances" in name else skmetric.neighbors
        assert getattr(skmetric, name) is getattr(home, name)


def test_every_demo_option_explains_itself_in_help():
    from skmetric._demo import build_parser

    parser = build_parser()
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help text"
    seed = next(a for a in parser._actions if a.dest == "random_state")
    assert seed.help == "seed of the folds' shuffle and of the learners (default: 0)"


@pytest.mark.parametrize("cls", [NCA, LMNN, LFDA, RCA_Supervised, SDML_Supervised])
def test_fit_without_labels_names_the_learner_not_a_mixin(cls):
    # The shared fit(X, y) used to fail with Python's "LabelledLearnerMixin.fit() missing 1
    # required positional argument: 'y'", naming an internal class.
    X, _ = load_wine(return_X_y=True)
    with pytest.raises(ValueError, match=rf"^This {cls.__name__} estimator requires y to be "
                       "passed"):
        cls().fit(X)


def test_nca_verbose_says_what_runs_before_the_inner_cv(capsys):
    # prior_strength='auto' spends most of a fit in its inner CV; verbose printed nothing
    # until it ended (on digits, most of the 16 s of a default fit).
    X, y = load_wine(return_X_y=True)
    NCA(verbose=1, max_iter=3, random_state=0).fit(MinMaxScaler().fit_transform(X), y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("[NCA] choosing prior_strength among inf, 0.01, 0.001, 0.0001, 0 by "
                        "inner 3-fold CV")
    assert lines[1].startswith("[NCA] prior_strength 'auto': inf: ")


def test_pml_distance_object_gets_the_name_that_computes_the_same():
    pytest.importorskip("torch")
    pml = pytest.importorskip("pytorch_metric_learning.distances")
    from skmetric.deep import losses, miners

    cases = [
        (pml.CosineSimilarity(), r"pass distance='cosine_similarity'\.$"),
        (pml.LpDistance(), r"pass distance='euclidean' \(and normalize=True, its "
                           r"normalize_embeddings\)\.$"),
        (pml.LpDistance(power=2, normalize_embeddings=False),
         r"pass distance='sqeuclidean' \(and normalize=False"),
        (pml.DotProductSimilarity(), r"pass distance='dot'"),
        (pml.LpDistance(p=1), r"pytorch-metric-learning's LpDistance has no equivalent"),
    ]
    for distance, hint in cases:
        with pytest.raises(ValueError, match=r"^Unknown distance .*" + hint):
            losses.TripletMarginLoss(distance=distance)
    with pytest.raises(ValueError, match="pass distance='euclidean'"):
        miners.MultiSimilarityMiner(distance=pml.LpDistance())
    # The names it gives do build the loss.
    assert losses.TripletMarginLoss(distance="sqeuclidean", normalize=False).normalize is False


def test_pml_reducer_object_is_refused_at_construction_naming_ours():
    # It used to be accepted, then fail at the first batch with PML's "forward() takes 4
    # positional arguments but 6 were given".
    pytest.importorskip("torch")
    pml = pytest.importorskip("pytorch_metric_learning.reducers")
    from skmetric.deep import ThresholdReducer, losses

    with pytest.raises(ValueError, match=r"pytorch-metric-learning's ThresholdReducer, which "
                       r"skmetric's losses cannot call; use skmetric\.deep\.ThresholdReducer"):
        losses.TripletMarginLoss(reducer=pml.ThresholdReducer(low=0.1))
    with pytest.raises(ValueError, match="use one of skmetric.deep's reducers"):
        losses.ContrastiveLoss(reducer=pml.DoNothingReducer())
    ours = losses.TripletMarginLoss(reducer=ThresholdReducer(low=0.1))
    assert isinstance(ours.reducer, ThresholdReducer)
