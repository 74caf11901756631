"""Generation of weak supervision (pairs, triplets, quadruplets, chunks) from class labels."""

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import column_or_1d

from ._validation import apply_preprocessor, format_labels, label_kind, unique_labels
from ._warn import warn_user

__all__ = ["Constraints", "wrap_pairs"]


class Constraints:
    """Sample index tuples that class labels imply: same class = similar.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Class label of each sample.
    unlabeled : scalar, default=None
        A label value that marks unlabelled samples, which take part in no constraint
        (metric-learn used -1; here no value is special unless you say so). NaN and None are
        not labels: mark unlabelled samples with a value such as -1 and pass ``unlabeled=-1``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmetric import Constraints
    >>> c = Constraints(np.array([0, 0, 1, 1, 1]))
    >>> a, b, c_, d = c.positive_negative_pairs(3, random_state=0)
    >>> len(a), len(c_)
    (3, 3)
    """

    def __init__(self, labels, unlabeled=None):
        labels = column_or_1d(labels, warn=True)
        if labels.shape[0] == 0:
            raise ValueError("labels is empty; Constraints needs labelled samples.")
        _check_no_missing_labels(labels, unlabeled)
        self.labels = labels
        self.unlabeled = unlabeled
        known = np.ones(labels.shape[0], dtype=bool)
        if unlabeled is not None:
            _check_unlabeled_kind(labels, unlabeled)
            known = labels != unlabeled
        self._known = np.flatnonzero(known)
        classes, codes = unique_labels(labels[self._known], "labels", return_inverse=True)
        self.classes_ = classes
        order = np.argsort(codes, kind="stable")
        # Labelled indices grouped by class: block k is members[starts[k]:starts[k]+counts[k]].
        self._members = self._known[order]
        self._counts = np.bincount(codes, minlength=classes.size)
        self._starts = np.r_[0, np.cumsum(self._counts)[:-1]]
        self._codes = codes[order]

    # -- pairs ---------------------------------------------------------------------------

    def positive_negative_pairs(self, n_constraints, same_length=False, random_state=None):
        """Draw distinct similar and dissimilar pairs.

        Parameters
        ----------
        n_constraints : int
            Number of pairs of each kind to draw.
        same_length : bool, default=False
            If True, return as many positive as negative pairs (the smaller count).
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        a, b, c, d : ndarrays of int
            Similar pairs ``(a[i], b[i])`` and dissimilar pairs ``(c[i], d[i])``.
        """
        n_constraints = _check_count(n_constraints, "n_constraints")
        rng = check_random_state(random_state)
        pos = self._distinct_pairs(n_constraints, True, rng)
        neg = self._distinct_pairs(n_constraints, False, rng)
        if same_length and len(pos) != len(neg):
            m = min(len(pos), len(neg))
            pos, neg = pos[:m], neg[:m]
        return pos[:, 0], pos[:, 1], neg[:, 0], neg[:, 1]

    def pairs(self, n_constraints, random_state=None):
        """Similar and dissimilar pairs with their labels, ready for a pair learner.

        Returns
        -------
        pairs : ndarray of shape (n_pairs, 2)
            Index pairs, similar ones first.
        y : ndarray of shape (n_pairs,)
            +1 for similar pairs, -1 for dissimilar ones.
        """
        a, b, c, d = self.positive_negative_pairs(n_constraints, random_state=random_state)
        pairs = np.vstack([np.column_stack([a, b]), np.column_stack([c, d])])
        y = np.r_[np.ones(len(a), dtype=int), -np.ones(len(c), dtype=int)]
        return pairs, y

    def _check_can_pair(self, same):
        if same and not np.any(self._counts >= 2):
            raise ValueError(
                "Cannot form similar pairs: every class has a single labelled sample. "
                "Provide at least two samples of some class."
            )
        if not same and self.classes_.size < 2:
            raise ValueError(
                "Cannot form dissimilar pairs: the labels hold a single class "
                f"({self.classes_.tolist()}). Provide samples of at least two classes."
            )

    def _n_possible_pairs(self, same):
        c = self._counts.astype(np.float64)
        if same:
            return int(np.sum(c * (c - 1) / 2))
        return int((c.sum() ** 2 - np.sum(c**2)) / 2)

    def _random_partners(self, anchors_pos, same, rng):
        """For anchors given by position in ``_members``, a random partner position."""
        k = self._codes[anchors_pos]
        start, count = self._starts[k], self._counts[k]
        if same:
            offset = rng.randint(1, np.iinfo(np.int32).max, size=anchors_pos.size) % (count - 1) + 1
            return start + (anchors_pos - start + offset) % count
        n_other = self._members.size - count
        r = (rng.randint(0, np.iinfo(np.int32).max, size=anchors_pos.size) % n_other)
        return np.where(r >= start, r + count, r)

    def _anchor_positions(self, size, same, rng):
        eligible = np.flatnonzero(self._counts[self._codes] >= 2) if same \
            else np.arange(self._members.size)
        return eligible[rng.randint(0, eligible.size, size=size)]

    def _distinct_pairs(self, n, same, rng):
        self._check_can_pair(same)
        possible = self._n_possible_pairs(same)
        target = min(n, possible)
        # Random partners find new pairs fast while most pairs are still undrawn; near all
        # of them, the last few would take many rounds and some were missed: draw those
        # requests from the list of every pair instead.
        found = self._sampled_pairs(target, same, rng) if 4 * target < possible else None
        if found is None or len(found) < target:
            found = self._every_pair(same)[rng.choice(possible, target, replace=False)]
        if len(found) < n:
            kind = "similar" if same else "dissimilar"
            warn_user(
                f"Only {len(found)} distinct {kind} pairs could be generated "
                f"(requested {n}); the labels allow {possible}.",
                UserWarning,
            )
        return found

    def _sampled_pairs(self, target, same, rng):
        """Up to ``target`` distinct pairs (sorted indices) by drawing random partners."""
        found = np.empty((0, 2), dtype=np.int64)
        for _ in range(50):
            if len(found) >= target:
                break
            size = 2 * (target - len(found)) + 16
            a = self._anchor_positions(size, same, rng)
            b = self._random_partners(a, same, rng)
            cand = np.sort(np.column_stack([self._members[a], self._members[b]]), axis=1)
            both = np.vstack([found, cand])
            _, first = np.unique(both, axis=0, return_index=True)
            found = both[np.sort(first)]
        found = found[:target]
        return found[rng.permutation(len(found))]

    def _every_pair(self, same):
        """Every similar (or dissimilar) pair, as sorted indices, class block by block."""
        blocks = []
        for k in range(self.classes_.size):
            start, stop = self._starts[k], self._starts[k] + self._counts[k]
            block = self._members[start:stop]
            if same:
                i, j = np.triu_indices(block.size, 1)
                blocks.append(np.column_stack([block[i], block[j]]))
            else:  # with every sample of the classes after this one
                rest = self._members[stop:]
                blocks.append(np.column_stack([np.repeat(block, rest.size),
                                               np.tile(rest, block.size)]))
        return np.sort(np.vstack(blocks), axis=1).astype(np.int64)

    # -- triplets and quadruplets ----------------------------------------------------------

    def triplets(self, n_constraints, random_state=None):
        """Random triplets (anchor, positive, negative) of indices, shape (n_constraints, 3)."""
        a, p, rng = self._similar_positions(n_constraints, random_state)
        neg = self._random_partners(a, False, rng)
        return np.column_stack([self._members[a], self._members[p], self._members[neg]])

    def quadruplets(self, n_constraints, random_state=None):
        """Quadruplets (a, b, c, d): a, b of one class and c, d of different classes.

        Returns an int array of shape (n_constraints, 4), ready for LSML.
        """
        a, b, rng = self._similar_positions(n_constraints, random_state)
        c = self._anchor_positions(a.shape[0], False, rng)
        d = self._random_partners(c, False, rng)
        return self._members[np.column_stack([a, b, c, d])]

    def _similar_positions(self, n_constraints, random_state):
        """``n_constraints`` similar pairs of positions ``(a, b)`` and the generator that
        drew them, for tuples that also hold a dissimilar pair (both kinds must exist)."""
        n = _check_count(n_constraints, "n_constraints")
        rng = check_random_state(random_state)
        self._check_can_pair(True)
        self._check_can_pair(False)
        a = self._anchor_positions(n, True, rng)
        return a, self._random_partners(a, True, rng), rng

    def generate_knntriplets(self, X, k_genuine, k_impostor):
        """Triplets (i, j, l) with j among i's ``k_genuine`` nearest same-class samples
        and l among its ``k_impostor`` nearest other-class samples (Euclidean).

        Every class needs at least ``k_genuine + 1`` labelled samples, and at least
        ``k_impostor`` labelled samples must lie outside each class.

        Returns an int array of shape (n_labelled * k_genuine * k_impostor, 3).
        """
        X = check_array(X, dtype=np.float64, input_name="X")
        if X.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"X must have one row per label ({self.labels.shape[0]}); got {X.shape[0]} "
                "rows."
            )
        k_genuine = _check_count(k_genuine, "k_genuine")
        k_impostor = _check_count(k_impostor, "k_impostor")
        self._check_can_pair(False)
        self._check_knn_sizes(k_genuine, k_impostor)
        out = []
        for k in range(self.classes_.size):
            members = self._members[self._starts[k]: self._starts[k] + self._counts[k]]
            others = np.setdiff1d(self._known, members, assume_unique=True)
            # kneighbors() without a query leaves each sample out of its own neighbours.
            genuine = NearestNeighbors(n_neighbors=k_genuine).fit(X[members])
            g = genuine.kneighbors(return_distance=False)
            impostor = NearestNeighbors(n_neighbors=k_impostor).fit(X[others])
            m = impostor.kneighbors(X[members], return_distance=False)
            anchors = np.repeat(members, k_genuine * k_impostor)
            pos = np.repeat(members[g], k_impostor, axis=1).ravel()
            neg = np.tile(others[m], (1, k_genuine)).ravel()
            out.append(np.column_stack([anchors, pos, neg]))
        return np.vstack(out)

    def _check_knn_sizes(self, k_genuine, k_impostor):
        """Name the first class too small for ``k_genuine`` or with too few outsiders."""
        small = np.flatnonzero(self._counts <= k_genuine)
        if small.size:
            k, largest_k = small[0], self._counts.min() - 1
            todo = (f"Lower k_genuine to at most {largest_k}, or drop" if largest_k >= 1
                    else "Drop")
            raise ValueError(
                f"Class {format_labels(self.classes_[k])} has {self._counts[k]} labelled samples, "
                f"too few for k_genuine={k_genuine}: each class needs at least "
                f"k_genuine + 1 = {k_genuine + 1}. {todo} the classes with fewer samples "
                "(or add samples to them)."
            )
        outside = self._members.size - self._counts
        crowded = np.flatnonzero(outside < k_impostor)
        if crowded.size:
            k = crowded[0]
            raise ValueError(
                f"Only {outside[k]} labelled samples lie outside class "
                f"{format_labels(self.classes_[k])}, too few for k_impostor={k_impostor}. Lower "
                f"k_impostor to at most {outside.min()}."
            )

    # -- chunks ----------------------------------------------------------------------------

    def chunks(self, n_chunks=100, chunk_size=2, random_state=None):
        """Disjoint groups of ``chunk_size`` same-class samples (for RCA).

        Returns
        -------
        chunks : ndarray of shape (n_samples,)
            The chunk of each sample, or -1 for samples in no chunk.
        """
        n_chunks = _check_count(n_chunks, "n_chunks")
        chunk_size = _check_count(chunk_size, "chunk_size")
        rng = check_random_state(random_state)
        per_class = self._counts // chunk_size
        if per_class.sum() < n_chunks:
            raise ValueError(
                f"Not enough samples for {n_chunks} chunks of size {chunk_size}: the "
                f"classes allow {per_class.sum()}. Lower n_chunks or chunk_size."
            )
        # Draw classes for the chunks without exceeding any class's capacity.
        slots = np.repeat(np.arange(self.classes_.size), per_class)
        chosen = np.bincount(rng.choice(slots, n_chunks, replace=False),
                             minlength=self.classes_.size)
        result = np.full(self.labels.shape[0], -1, dtype=int)
        next_id = 0
        for k in np.flatnonzero(chosen):
            block = self._members[self._starts[k]: self._starts[k] + self._counts[k]]
            picked = rng.permutation(block)[: chosen[k] * chunk_size]
            result[picked] = next_id + np.arange(chosen[k]).repeat(chunk_size)
            next_id += chosen[k]
        return result


def wrap_pairs(X, constraints):
    """Turn ``(a, b, c, d)`` index arrays into pairs of samples and labels.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2, n_features)
    y : ndarray of shape (n_pairs,), +1 for (a, b) pairs and -1 for (c, d) pairs.
    """
    a, b, c, d = (np.asarray(v) for v in constraints)
    for first, second, names in ((a, b, "a and b"), (c, d, "c and d")):
        if first.shape != second.shape or first.ndim != 1:
            raise ValueError(f"{names} must be 1-D index arrays of the same length; got "
                             f"shapes {first.shape} and {second.shape}.")
    idx = np.vstack([np.column_stack([a, b]), np.column_stack([c, d])])
    y = np.r_[np.ones(len(a), dtype=int), -np.ones(len(c), dtype=int)]
    # The same checks as indices into a preprocessor: integers within the samples.
    return apply_preprocessor(X, idx, what="constraints"), y


def _check_no_missing_labels(labels, unlabeled):
    """NaN and None are not labels (NaN != NaN would make each NaN its own "class")."""
    if isinstance(unlabeled, float) and np.isnan(unlabeled):
        raise ValueError(
            "unlabeled=nan cannot mark unlabelled samples (NaN equals nothing, not even "
            "NaN). Give unlabelled samples a label value such as -1 and pass unlabeled=-1."
        )
    if labels.dtype.kind in "fc":
        missing = np.isnan(labels)
    elif labels.dtype.kind == "O":
        missing = np.array([v is None or (isinstance(v, float) and np.isnan(v))
                            for v in labels])
    else:
        return
    if missing.any():
        raise ValueError(
            f"labels contain {int(missing.sum())} missing values (NaN or None), e.g. at "
            f"index {int(np.flatnonzero(missing)[0])}. NaN is not a label: give unlabelled "
            "samples a label value such as -1 and pass unlabeled=-1 (they then take part in "
            "no constraint), or drop them."
        )


def _check_unlabeled_kind(labels, unlabeled):
    """A number never equals a string label: unlabeled=-1 with labels '-1' marked nothing."""
    kinds = label_kind(labels), label_kind(unlabeled)
    if None not in kinds and kinds[0] != kinds[1]:
        raise TypeError(
            f"unlabeled={unlabeled!r} cannot mark any of the labels: they are "
            f"{kinds[0]} and unlabeled is not. Give unlabeled the labels' type, e.g. "
            f"unlabeled={str(unlabeled)!r} for string labels."
        )


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)
