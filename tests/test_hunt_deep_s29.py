"""Bugs found off the happy path of skmetric.deep (eighth session's hunt), one test each.

Each test failed before its fix: a deep torch traceback where a clear error or a finite
value is defined, or silently wrong output.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _deep_data import blobs  # noqa: E402

from skmetric.deep import MetricEmbedder  # noqa: E402
from skmetric.deep import losses as L  # noqa: E402
from skmetric.deep import miners as M  # noqa: E402

FAST = dict(embedding_dim=4, max_epochs=1, batch_size=16, random_state=0, verbose=0,
            module__hidden=(8,))


def _batch(seed=0, n=8, dim=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.arange(n) // 2


def _value_and_grad(loss, embeddings, labels, **kwargs):
    x = embeddings.detach().clone().requires_grad_(True)
    value = loss(x, labels, **kwargs)
    value.backward()
    return value.detach(), x.grad


# --------------------------------------------------------- 16-bit embeddings
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("distance", ["euclidean", "sqeuclidean"])
def test_16_bit_embeddings_work_with_euclidean_losses_and_miners(dtype, distance):
    # torch's CPU cdist has no float16/bfloat16 kernel: every Euclidean loss and miner
    # failed with NotImplementedError (pytorch-metric-learning handles float16).
    emb, labels = _batch()
    low = emb.to(dtype)
    for loss in (L.ContrastiveLoss(distance=distance), L.TripletMarginLoss(distance=distance),
                 L.SignalToNoiseRatioContrastiveLoss()):
        value, grad = _value_and_grad(loss, low, labels)
        reference, _ = _value_and_grad(loss, emb, labels)
        assert value.dtype == grad.dtype == dtype
        assert torch.isfinite(grad).all()
        torch.testing.assert_close(value.float(), reference, rtol=0.05, atol=0.02)
    miner = M.BatchHardMiner(distance=distance)
    for got, want in zip(miner(low, labels), miner(emb, labels), strict=True):
        assert got.dtype == torch.long and torch.equal(got, want)


def test_float16_euclidean_loss_matches_pytorch_metric_learning():
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    emb, labels = _batch(seed=1)
    ours, _ = _value_and_grad(L.ContrastiveLoss(), emb.half(), labels)
    theirs, _ = _value_and_grad(pml_losses.ContrastiveLoss(), emb.half(), labels)
    torch.testing.assert_close(ours, theirs, rtol=2e-2, atol=2e-3)


# ------------------------------------------------------- P2SGrad on zero rows
def test_p2sgrad_gives_a_zero_embedding_cosines_of_zero_not_nan():
    # A ReLU network can output a zero row (F.normalize keeps it zero); P2SGrad divided
    # by its norm: NaN loss, and NaN gradients in the embeddings and the class weights.
    emb, labels = _batch(n=6)
    labels = labels % 3
    emb[2] = 0
    loss = L.P2SGradLoss(3, 4)
    value, grad = _value_and_grad(loss, emb, labels)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    assert torch.isfinite(loss.W.grad).all()
    # The closed form: the zero row has cosine 0 to every class (its term is 1 / 3).
    W = loss.W.detach()
    cos = (torch.nn.functional.normalize(emb, dim=1) @ W).clamp(-1, 1)
    target = torch.nn.functional.one_hot(labels, 3).float()
    torch.testing.assert_close(value, ((cos - target) ** 2).mean())
    assert torch.equal(cos[2], torch.zeros(3))
    assert torch.equal(loss.logits(emb)[2], torch.zeros(3))


# ------------------------------------------------ ClassWeightedReducer labels
@pytest.mark.parametrize("bad", [-1, 3, 70])
def test_class_weighted_reducer_refuses_labels_without_a_weight(bad):
    # Labels past the weights failed with an IndexError inside the reducer; a negative
    # label silently took the weight of the last class.
    emb, _ = _batch(n=6)
    labels = torch.tensor([0, 0, 1, 1, bad, bad])
    loss = L.ContrastiveLoss(reducer=L.ClassWeightedReducer([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=(
            r"^ClassWeightedReducer has weights for 3 classes, so labels must be class "
            r"indices in \[0, 3\); got values in .* Give one weight per class")):
        loss(emb, labels)
    loss(emb, labels.clamp(0, 2))  # in range: fine


# ------------------------------------------------------------------ devices
@pytest.mark.parametrize("device", ["gpu", "cuda:99"])
def test_an_unusable_device_is_refused_up_front_saying_what_to_do(device):
    # 'cuda' on a CPU-only torch raised "AssertionError: Torch not compiled with CUDA
    # enabled" from skorch's initialisation; a typo raised torch's RuntimeError there.
    X, y = blobs()
    emb = MetricEmbedder(device=device, **FAST)
    with pytest.raises(ValueError, match=rf"^device='{device}' cannot be used: .*"
                                         r"Pass device='cpu'"):
        emb.fit(X, y)
    assert not hasattr(emb, "module_")


def test_cuda_without_cuda_is_a_value_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    X, y = blobs()
    with pytest.raises(ValueError, match="device='cuda' cannot be used"):
        MetricEmbedder(device="cuda", **FAST).fit(X, y)


# ------------------------------------------------------ paths in a pandas Series
def test_a_pandas_series_of_image_paths_is_read_as_files(tmp_path):
    # df["path"] failed in validate_data with "could not convert string to float".
    pd = pytest.importorskip("pandas")
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 4)
    paths = []
    for i in range(len(y)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(paths[-1])
    params = dict(embedding_dim=4, batch_size=12, max_epochs=1, random_state=0, verbose=0,
                  module__channels=(4,))
    expected = MetricEmbedder(**params).fit(paths, y).transform(paths)
    frame = pd.DataFrame({"path": paths, "label": y})
    emb = MetricEmbedder(**params).fit(frame["path"], frame["label"])
    assert emb.input_shape_ == (3, 6, 5)
    np.testing.assert_array_equal(emb.transform(frame["path"]), expected)
    np.testing.assert_array_equal(emb.transform(pd.Index(paths)), expected)


# ------------------------------------------- proxy losses built by the user
@pytest.mark.parametrize("make, match", [
    (lambda: dict(loss=L.ArcFaceLoss(6, 4)), r"ArcFaceLoss was built with num_classes=6, "
                                             r"but y has 4 classes\. Build it with "
                                             r"num_classes=4"),
    (lambda: dict(loss=L.ArcFaceLoss, loss__num_classes=6), "num_classes=6"),
    (lambda: dict(loss=L.ProxyAnchorLoss(3, 4)), "num_classes=3, but y has 4 classes"),
    (lambda: dict(loss=L.CosFaceLoss(4, 8)), "embedding_size=8, but the network's "
                                             "embeddings have 4 dimensions"),
    (lambda: dict(loss=L.MultipleLosses([L.ContrastiveLoss(), L.NormFaceLoss(5, 4)])),
     "NormFaceLoss was built with num_classes=5"),
], ids=["more_classes", "loss__num_classes", "fewer_classes", "embedding_size",
        "inside_multiple_losses"])
def test_a_proxy_loss_sized_for_other_classes_is_refused_before_training(make, match):
    # More classes than y: predict returned indices past classes_ (an IndexError in
    # NumPy) and predict_proba extra columns; fewer: an error at the first batch holding
    # a later class, which told the user that MetricEmbedder encodes labels for them.
    X, y = blobs(n_classes=4)
    emb = MetricEmbedder(miner=None, **FAST, **make())
    with pytest.raises(ValueError, match=match):
        emb.fit(X, y)
    right = MetricEmbedder(loss=L.ArcFaceLoss(4, 4), miner=None, **FAST).fit(X, y)
    assert right.predict_proba(X).shape == (len(X), 4)
    assert set(right.predict(X)) <= set(right.classes_)


# ------------------------------------------------- a user's loss must reduce
class _PerSampleLoss(torch.nn.Module):
    def forward(self, embeddings, labels=None, indices_tuple=None, ref_emb=None,
                ref_labels=None):
        return embeddings.pow(2).sum(1)  # forgot the mean


def test_a_loss_returning_per_sample_terms_gets_a_clear_error():
    # Was "RuntimeError: Boolean value of Tensor with more than one value is ambiguous"
    # from the embedder's divergence check.
    X, y = blobs()
    with pytest.raises(ValueError, match=r"The loss must return a scalar \(0-d\) tensor; "
                                         r"_PerSampleLoss returned a tensor of shape \(16,\)"):
        MetricEmbedder(loss=_PerSampleLoss(), miner=None, **FAST).fit(X, y)


# ------------------------------------------------ unknown keyword arguments
@pytest.mark.parametrize("make, match", [
    (lambda: L.ContrastiveLoss(neg_margn=0.5), r"^ContrastiveLoss got an unexpected keyword "
     r"argument 'neg_margn'; did you mean neg_margin\? Its parameters are distance, .*"),
    (lambda: L.ArcFaceLoss(3, 4, regularizer=None), "did you mean weight_regularizer"),
    (lambda: L.P2SGradLoss(3, descriptor_dim=4), "did you mean descriptors_dim"),
    (lambda: M.BatchHardMiner(distanc="euclidean"), "did you mean distance"),
    (lambda: L.LpRegularizer(q=1), r"'q'\. Its parameters are p, power, reducer\.$"),
], ids=["loss", "shared_option", "pml_name", "miner", "regularizer_no_close_name"])
def test_unknown_keyword_arguments_name_the_closest_parameter(make, match):
    # Python's own TypeError named neither the closest parameter nor the valid ones
    # (for the shared options and PML's names, __init__'s signature does not show them).
    with pytest.raises(TypeError, match=match):
        make()


def test_an_embedders_unknown_loss_sub_parameter_names_the_closest():
    X, y = blobs()
    with pytest.raises(TypeError, match="'neg_margn'; did you mean neg_margin"):
        MetricEmbedder(loss="contrastive", loss__neg_margn=0.5, **FAST).fit(X, y)


# ----------------------------- wrappers around losses of the whole batch
@pytest.mark.parametrize("loss", ["npairs", "fast_ap", "ranked_list", "histogram"])
def test_cross_batch_memory_refuses_a_whole_batch_loss_when_built(loss):
    # Built fine, then failed at the first batch telling the user to drop a miner they
    # never passed ("use it without a miner (miner=None in MetricEmbedder)") or to
    # "pass only embeddings and labels". pytorch-metric-learning refuses them when built.
    with pytest.raises(ValueError, match=r"^CrossBatchMemory calls its loss with ref_emb"
                                         r".*which \w+Loss does not take"):
        L.CrossBatchMemory(loss, embedding_size=4, memory_size=16)


def test_self_supervised_loss_needs_ref_emb_only_when_not_symmetric():
    emb, _ = _batch()
    with pytest.raises(ValueError, match=r"^SelfSupervisedLoss with symmetric=False calls "
                                         r"its loss with ref_emb, which NPairsLoss does not "
                                         r"take.*Pass symmetric=True"):
        L.SelfSupervisedLoss("npairs", symmetric=False)
    # Symmetric, the two views are one batch: any pair-based loss works.
    value, grad = _value_and_grad(L.SelfSupervisedLoss("npairs"), emb, emb + 0.01)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


# ------------------------------------------------- the class-balanced sampler
@pytest.mark.parametrize("kwargs, name", [
    (dict(samples_per_class="4"), "samples_per_class"),  # UFuncTypeError in NumPy
    (dict(samples_per_class=2.5), "samples_per_class"),  # silently 2 per class
    (dict(batch_size=16.5), "batch_size"),               # TypeError from range()
    (dict(n_batches=-1), "n_batches"),                   # "__len__() should return >= 0"
    (dict(n_batches=0), "n_batches"),                    # an epoch without batches
])
def test_sampler_parameters_are_validated_by_name(kwargs, name):
    from skmetric.deep import ClassBalancedBatchSampler

    labels = np.repeat(np.arange(4), 6)
    params = {"samples_per_class": 2, "batch_size": 8, **kwargs}
    with pytest.raises(ValueError, match=rf"The '{name}' parameter of "
                                         r"ClassBalancedBatchSampler must be"):
        ClassBalancedBatchSampler(labels, **params)
    assert [len(b) for b in ClassBalancedBatchSampler(labels, 2, 8, n_batches=2)] == [8, 8]


# ------------------------------------------- train_transform must give tensors
@pytest.mark.parametrize("per_sample", [True, False])
@pytest.mark.parametrize("transform", [lambda x: x.numpy(), lambda x: None],
                         ids=["numpy", "none"])
def test_a_train_transform_returning_no_tensor_is_named(transform, per_sample):
    # Was torch.stack's "expected Tensor as element 0 in argument 0" (per sample) or an
    # AttributeError/TypeError inside the network (per batch).
    X, y = blobs()
    emb = MetricEmbedder(train_transform=transform, train_transform_per_sample=per_sample,
                         **FAST)
    with pytest.raises(TypeError, match=r"^train_transform must return a torch\.Tensor, "
                                        r"as it is given; it returned (ndarray|NoneType)"):
        emb.fit(X, y)


# ------------------------------------------------------------- empty batches
@pytest.mark.parametrize("name", sorted(set(L.LOSSES) - {"vicreg"}))
def test_the_loss_of_an_empty_batch_is_a_differentiable_zero(name):
    # 16 losses returned NaN (a mean over no terms) where pytorch-metric-learning's
    # reducers give 0, e.g. MultiSimilarityLoss and GeneralizedLiftedStructureLoss.
    cls = L.LOSSES[name]
    loss = cls(3, 4) if cls.requires_classes else cls()
    value, grad = _value_and_grad(loss, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert value.item() == 0.0 and grad.shape == (0, 4)


def test_the_empty_batch_zero_matches_pytorch_metric_learning():
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    empty = torch.zeros(0, 4, requires_grad=True), torch.zeros(0, dtype=torch.long)
    for ours, theirs in ((L.MultiSimilarityLoss(), pml_losses.MultiSimilarityLoss()),
                         (L.GeneralizedLiftedStructureLoss(),
                          pml_losses.GeneralizedLiftedStructureLoss())):
        assert ours(*empty).item() == theirs(*empty).item() == 0.0


@pytest.mark.parametrize("miner", ["batch_hard", "distance_weighted", "multi_similarity",
                                   "batch_easy_hard", "semihard", "hdc"])
@pytest.mark.parametrize("enqueue", [False, True], ids=["memory_empty", "no_queries"])
def test_cross_batch_memory_with_nothing_to_mine_gives_zero(miner, enqueue):
    # enqueue_mask all False on the first batch leaves the memory empty (batch_hard,
    # distance_weighted, multi_similarity, batch_easy_hard raised IndexError reducing
    # over an empty dimension); all True leaves no queries (MultiSimilarityLoss: NaN).
    emb, labels = _batch()
    xbm = L.CrossBatchMemory(L.MultiSimilarityLoss(), embedding_size=4, memory_size=16,
                             miner=miner)
    mask = torch.full((len(emb),), enqueue)
    value, grad = _value_and_grad(xbm, emb, labels, enqueue_mask=mask)
    assert value.item() == 0.0 and torch.equal(grad, torch.zeros_like(emb))
    tuples = M.get_miner(miner)(emb[:0], labels[:0])
    assert len(tuples) == (4 if M.get_miner(miner).output == "pairs" else 3)
    assert all(t.dtype == torch.long and t.numel() == 0 for t in tuples)


def test_cross_batch_memory_refuses_a_miner_of_the_batch_only():
    # NPairsMiner was accepted, then failed at the first batch with "NPairsMiner does not
    # support ref_emb; pass only the batch" (the user passed no ref_emb).
    with pytest.raises(ValueError, match=r"^CrossBatchMemory mines the batch against its "
                                         r"memory \(ref_emb\), which NPairsMiner does not"):
        L.CrossBatchMemory(L.ContrastiveLoss(), embedding_size=4, miner="npairs")


# ----------------------------------------------- labels given to losses directly
@pytest.mark.parametrize("labels", [np.array(list("aabbcc")), list("aabbcc")],
                         ids=["array", "list"])
@pytest.mark.parametrize("make", [L.ContrastiveLoss, M.BatchHardMiner,
                                  lambda: L.ArcFaceLoss(3, 4)],
                         ids=["loss", "miner", "proxy_loss"])
def test_string_labels_get_a_label_encoder_hint(make, labels):
    # Were torch's "too many dimensions 'str'" and "can't convert np.ndarray of type
    # numpy.str_", naming neither the argument nor the fix.
    emb, _ = _batch(n=6)
    with pytest.raises(TypeError, match=r"^labels must be numbers .*LabelEncoder"):
        make()(emb, labels)


@pytest.mark.parametrize("make", [L.SmoothAPLoss, L.PNPLoss, L.ContrastiveLoss,
                                  M.BatchHardMiner, lambda: L.CosFaceLoss(3, 4)],
                         ids=["smooth_ap", "pnp", "contrastive", "miner", "proxy_loss"])
def test_nan_labels_are_refused(make):
    # SmoothAP and PNP returned NaN; pair losses and miners silently treated each NaN
    # sample as a class of its own; proxy losses reported a label of -2**63.
    emb, _ = _batch(n=6)
    labels = torch.tensor([0.0, 0.0, float("nan"), 1.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"^labels contain NaN; every embedding needs a "
                                         r"class label\.$"):
        make()(emb, labels)
    make()(emb, torch.nan_to_num(labels, nan=2.0))  # numbers: fine


# ------------------------------------- continued training keeps its network
@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_continued_training_refuses_an_embedding_dim_changed_since(how):
    # set_params(embedding_dim=6) then fit with warm_start=True (or partial_fit) went on
    # training the 4-dimensional network: transform silently kept returning 4 columns.
    X, y = blobs()
    emb = MetricEmbedder(warm_start=how == "warm_start", **FAST).fit(X, y)
    more = emb.fit if how == "warm_start" else emb.partial_fit
    more(X, y)  # unchanged: trains on
    assert emb.n_iter_ == 2
    emb.set_params(embedding_dim=6)
    with pytest.raises(ValueError, match=r"^embedding_dim=6, but the network being trained "
                                         r"further .* returns 4 dimensions"):
        more(X, y)
    emb.set_params(warm_start=False)
    assert emb.fit(X, y).transform(X).shape == (len(X), 6)
    # A user's module sets its own size: embedding_dim is not used, nothing to refuse.
    params = {k: v for k, v in FAST.items() if k != "module__hidden"}
    own = MetricEmbedder(torch.nn.Linear(5, 3), **params).partial_fit(X, y)
    own.set_params(embedding_dim=6)
    assert own.partial_fit(X, y).transform(X).shape == (len(X), 3)


# ------------------------------------------------------------ build_trunk sizes
@pytest.mark.parametrize("kwargs, what", [
    (dict(embedding_dim=0), "embedding_dim"),    # an empty head: embeddings of size 0
    (dict(embedding_dim=-2), "embedding_dim"),   # torch's "negative dimension" error
    (dict(embedding_dim=2.5), "embedding_dim"),  # torch's TypeError from nn.Linear
    (dict(in_channels=0), "in_channels"),
])
def test_build_trunk_checks_its_sizes_before_building(kwargs, what):
    pytest.importorskip("torchvision")
    from skmetric.deep import build_trunk

    with pytest.raises(ValueError, match=rf"^{what} must be a positive integer; got "):
        build_trunk("resnet18", **kwargs)
    trunk = build_trunk("resnet18", embedding_dim=np.int64(3), in_channels=np.int64(1))
    assert trunk.eval()(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


# ------------------------------------------------------ misspelt registry names
@pytest.mark.parametrize("get, name, closest", [
    (L.get_loss, "tripplet", "triplet"),
    (L.get_loss, "ArcFase", "arcface"),
    (M.get_miner, "batchhard2", "batch_hard"),
])
def test_a_misspelt_loss_or_miner_name_suggests_the_closest(get, name, closest):
    # The message listed every name, without pointing at the one meant.
    kind = "loss" if get is L.get_loss else "miner"
    with pytest.raises(ValueError, match=rf"^Unknown {kind} '{name}'; did you mean "
                                         rf"'{closest}'\? Valid names: \["):
        get(name)
    with pytest.raises(ValueError, match=rf"^Unknown {kind} 'xyz'\. Valid names"):
        get("xyz")


# ----------------------------------------------- reference embeddings' dtype
@pytest.mark.parametrize("make", [L.ContrastiveLoss, L.MultiSimilarityLoss,
                                  M.TripletMarginMiner, M.MultiSimilarityMiner],
                         ids=["cdist_loss", "matmul_loss", "cdist_miner", "matmul_miner"])
@pytest.mark.parametrize("ref_dtype", [torch.float64, torch.float16])
def test_reference_embeddings_of_another_dtype_are_named(make, ref_dtype):
    # A float32 batch against a float64 (or float16) memory bank raised torch's
    # "expected scalar type Float but found Double" from inside a distance.
    emb, labels = _batch()
    ref = emb.to(ref_dtype)
    with pytest.raises(TypeError, match=rf"^ref_emb is {ref_dtype} on cpu but embeddings "
                                        r"are torch\.float32 on cpu; pass both alike"):
        make()(emb, labels, ref_emb=ref, ref_labels=labels)
    make()(emb, labels, ref_emb=ref.to(emb), ref_labels=labels)


# --------------------------------------------- random miners under random_state
@pytest.mark.parametrize("miner", ["random", "distance_weighted", "npairs",
                                   "uniform_histogram"])
def test_a_fixed_random_state_also_seeds_a_random_miner(miner):
    # The miner's generator was seeded from fresh entropy: MetricEmbedder(random_state=0,
    # miner='random') trained differently at every fit.
    X, y = blobs()
    params = {**FAST, "max_epochs": 2}
    first = MetricEmbedder(miner=miner, **params).fit(X, y)
    second = MetricEmbedder(miner=miner, **params).fit(X, y)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    assert first.miner_.random_state == second.miner_.random_state is not None
    # An explicit miner__random_state wins; other seeds give other miner draws.
    other = MetricEmbedder(miner=miner, miner__random_state=123, **params).fit(X, y)
    assert other.miner_.random_state == 123


# -------------------------------------- ProbabilisticEmbedder's loss reads [μ, log σ²]
@pytest.mark.parametrize("loss, miner", [("contrastive", "multi_similarity"),
                                         (L.TripletMarginLoss(), None),
                                         ("arcface", None)],
                         ids=["name", "instance", "proxy"])
def test_probabilistic_embedder_refuses_a_loss_of_plain_embeddings(loss, miner):
    # A metric loss trained silently on the concatenation [μ, log σ²] as if it were one
    # embedding (the head then learns nothing about uncertainty); a proxy loss failed at
    # the first batch on the doubled size.
    from skmetric.deep import ProbabilisticEmbedder
    from skmetric.deep.pfe import MLSLoss

    X, y = blobs()
    name = type(loss).__name__ if not isinstance(loss, str) else None
    with pytest.raises(ValueError, match=r"^ProbabilisticEmbedder trains with a loss of "
                                         rf"\[μ, log σ²\] such as MLSLoss .*{name or ''}"):
        ProbabilisticEmbedder(loss=loss, miner=miner, **FAST).fit(X, y)
    # The documented way to train μ with a metric loss as well.
    pfe = ProbabilisticEmbedder(loss=MLSLoss(mu_loss=L.ContrastiveLoss()),
                                freeze_trunk=False, **FAST).fit(X, y)
    assert pfe.transform(X).shape == pfe.transform_uncertainty(X).shape == (len(X), 4)


# ------------------------------------------------------------ constant inputs
@pytest.mark.parametrize("how", ["zeros", "one_row_repeated"])
def test_identical_samples_are_named_not_blamed_on_the_learning_rate(how):
    # Training stopped after an epoch with "the embeddings collapsed ... Lower the
    # learning rate", which no learning rate fixes.
    X, y = blobs()
    bad = np.zeros_like(X) if how == "zeros" else np.repeat(X[:1], len(X), axis=0)
    with pytest.raises(ValueError, match=rf"^All {len(X)} samples of X are identical"):
        MetricEmbedder(**FAST).fit(bad, y)
    almost = bad.copy()
    almost[0, 0] += 1.0  # one sample apart: a fit can start
    MetricEmbedder(**{**FAST, "max_epochs": 0}).fit(almost, y)
