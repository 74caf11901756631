"""Pairwise distances on NumPy, torch, CuPy and array-api-strict arrays, in bounded memory.

One code path written against the Array API (through ``array_api_compat``) serves every
namespace: NumPy in gives NumPy out, a torch tensor gives a torch tensor on the same device,
a CuPy array gives a CuPy array. Results are computed in blocks of rows, so the memory used
beyond the inputs and the output is set by ``chunk_size`` or ``working_memory``, not by n².
NumPy arrays take a few in-place fast paths; the arithmetic is the same. Inputs of any
finite magnitude and offset are handled by one scaling and centring mechanism, that of the
distance engine (``skmetric._compute._engine``), which :mod:`skmetric.neighbors` and
:mod:`skmetric.metrics` use too.
"""


from ._compute._engine import METRICS, prepare
from ._compute._params import ARRAY, ARRAY_OR_NONE, BLOCKS, COUNT_OR_NONE, METRIC_ARRAYS
from ._sklearn_compat import validate_params

__all__ = ["METRICS", "pairwise_distances", "pairwise_distances_chunked"]


@validate_params(
    {"X": ARRAY, "Y": ARRAY_OR_NONE, **METRIC_ARRAYS, **BLOCKS,
     "n_threads": COUNT_OR_NONE},
    prefer_skip_nested_validation=True,
)
def pairwise_distances(X, Y=None, metric="euclidean", *, M=None, L=None, chunk_size=None,
                       working_memory=None, n_threads=None):
    """Distances between the rows of ``X`` and the rows of ``Y``.

    Parameters
    ----------
    X : array of shape (n_samples_X, n_features)
        NumPy, torch, CuPy or any Array API array (lists are read as NumPy).
    Y : array of shape (n_samples_Y, n_features), default=None
        Same namespace as ``X``. None means ``Y = X``; the diagonal is then exactly 0.
    metric : {'euclidean', 'sqeuclidean', 'cosine', 'mahalanobis'} or callable, \
            default='euclidean'
        'euclidean' and 'sqeuclidean' use ``||x||² - 2 x·y + ||y||²`` (one matrix product
        per block; see Notes for its accuracy); 'cosine' is ``1 - cos(x, y)`` in [0, 2]
        (a zero vector is at distance 1 from everything), computed as ``1 - u·v`` on the
        unit rows u, v, and as ``||u - v||² / 2`` where that cancels (below
        ``4 d sqrt(eps)``): accurate to about eps over the angle between the rows; 'mahalanobis' is
        ``sqrt((x - y)ᵀ M (x - y)) = ||L x - L y||`` given exactly one of ``M`` and ``L``.
        A callable ``metric(X_block, Y)`` returns the (n_block, n_samples_Y) distances of
        a block of rows; a wrong shape, a non-real dtype or NaN is a ValueError/TypeError.
    M : array of shape (n_features, n_features), default=None
        Symmetric positive semi-definite Mahalanobis matrix (for 'mahalanobis').
    L : array of shape (n_components, n_features), default=None
        Linear map with ``M = Lᵀ L`` (e.g. a learner's ``components_``); cheaper than M.
    chunk_size : int, default=None
        Rows of ``X`` per block.
    working_memory : float, default=None
        Memory budget of one block in MiB, as scikit-learn's ``working_memory``; used when
        ``chunk_size`` is None. Defaults to ``sklearn.get_config()['working_memory']``.
    n_threads : int, default=None
        NumPy input: blocks computed in parallel by this many threads, each with a
        single-threaded BLAS (one block per thread in memory). None uses every CPU core;
        1 keeps one block at a time with the BLAS's own threads. Other namespaces
        parallelise inside their kernels and ignore it.

    Returns
    -------
    D : array of shape (n_samples_X, n_samples_Y)
        In the namespace and on the device of ``X``, with its floating dtype (float32
        stays float32; integers become float64; float16 and bfloat16 are computed and
        returned in float32, whose range holds their squared distances).

    Notes
    -----
    Accuracy of 'euclidean', 'sqeuclidean' and 'mahalanobis' (in the mapped space), for
    finite input of any magnitude: each distance is within a relative ``sqrt(eps)`` of
    the exact distance of the given (floating) coordinates, 1.5e-8 in float64 and 3.5e-4
    in float32 at worst (typically 1e-15 and 1e-7); a duplicate pair is exactly 0.
    Distances are inf only where the true value exceeds the largest float ('sqeuclidean'
    of points 1e160 apart). How: the coordinates are multiplied by a power of two (exact)
    when their magnitude would let a squared norm overflow or underflow, and centred on
    the mean of ``Y`` when it lies farther from the origin than ``Y``'s spread (offset
    data); entries where the expansion's round-off bound exceeds ``sqrt(eps)`` times the
    entry are recomputed directly from ``x - y``. One mechanism, shared by every function
    of this module and of :mod:`skmetric.neighbors`, on every namespace.

    torch autograd flows through the result (no in-place operation on the graph); the
    subgradient of a zero distance is 0, as for ``torch.cdist``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.distances import pairwise_distances
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> pairwise_distances(X)
    array([[0., 5.],
           [5., 0.]])
    >>> pairwise_distances(X, metric="mahalanobis", L=np.diag([2.0, 1.0]))
    array([[0.        , 7.21110255],
           [7.21110255, 0.        ]])
    >>> pairwise_distances(X * 1e300)  # the squared norms would overflow
    array([[0.e+000, 5.e+300],
           [5.e+300, 0.e+000]])
    """
    return prepare(X, Y, metric, M, L).pairwise(chunk_size, working_memory, n_threads)


@validate_params(
    {"X": ARRAY, "Y": ARRAY_OR_NONE, **METRIC_ARRAYS, **BLOCKS},
    prefer_skip_nested_validation=True,
)
def pairwise_distances_chunked(X, Y=None, metric="euclidean", *, M=None, L=None,
                               chunk_size=None, working_memory=None):
    """Yield the distance matrix of :func:`pairwise_distances` block of rows by block.

    Takes the same parameters. Each block is a new array of shape
    (block_rows, n_samples_Y), in the namespace and on the device of ``X``; only one
    block is alive at a time unless the caller keeps them.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric.distances import pairwise_distances_chunked
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> [block.shape for block in pairwise_distances_chunked(X, chunk_size=2)]
    [(2, 5), (2, 5), (1, 5)]
    """
    prep = prepare(X, Y, metric, M, L)
    for start, stop in prep.row_blocks(prep.block_rows(chunk_size, working_memory)):
        yield prep.distance_block(start, stop)
