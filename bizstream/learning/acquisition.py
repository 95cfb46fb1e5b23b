"""Which posts a person should label next.

Hybrid (the labeler's default): the ``prefilter`` x n most uncertain posts (entropy), k-means on their embeddings
into n clusters, and the most uncertain post of each — uncertain, but not n near-copies of one confusing post. Cold
start (before there are labels to learn from): the posts nearest the centres of n k-means clusters of the pool, so
the first labels cover what is being said. Plain entropy and random orders are here to compare against. Measured in
bench/active_learning.py, in batches of 50 (what one labeler session asks for): on finance tweets the hybrid with a
cold start reaches with 200 labels the accuracy random reaches with 800, but not its macro-F1 (0.618 against 0.639,
10 seeds; at 400 labels 0.656). Tried and no better at 200 labels: prefilters of 5x to 190x (the whole pool), margin
instead of entropy, BADGE, entropy-weighted k-means, stratifying by predicted class, weighting by the rarity of the
predicted class, a random share of 20-30%, typical posts of uncovered clusters up to 100 or 200 labels, batches of
25, k-center greedy (core-set) instead of k-means (0.619 macro-F1), disagreement of 5 bootstrapped heads (BALD;
0.591); and self-training, the head's confident guesses on the pool added as half-weight labels for every strategy
alike (at 0.9 confidence none qualified before 400 labels; at 0.7 hybrid fell to 0.610 at 200 and random to 0.631 at
800); contrastive active learning (CAL: the KL divergence from the predictions on a post's 10 nearest labelled
posts; 0.558 alone, and as the pick within hybrid's clusters 0.628 against 0.620, within run-to-run noise, and
behind at 400); ALFA-Mix (the candidates whose prediction flips when mixed towards a labelled class's mean
embedding; 0.619), information density (entropy times the mean similarity to the 20 nearest pool posts; 0.623), the
most central instead of the most uncertain post of each cluster (0.618), batches of 10 (0.616); for every strategy
alike, the head's C from 0.3 to 10 (at 0.3 hybrid 0.620, random at 800 0.634; 1 is the default), embeddings
centred on the pool's mean (0.605) or whitened by its covariance (shrunk towards the identity by 0.05 to 0.5:
0.492 to 0.564, random at 800 0.593 to 0.628), and label spreading over a 10-nearest-neighbour graph of the pool
(0.486);
templated examples ("This sentence is bearish.", SetFit's zero-shot trick) in every training set (0.621 and 0.617 at
weights 1 and 5, but random at 800 rises to 0.641 and 0.646), VADER's scores as extra features (0.621; random
0.645), class weights from the pool's class prior instead of the labelled set's (0.575 with the true prior: hybrid's
labels are already balanced, and its minority-class recall is not a threshold problem), and offsets chosen for the
best plug-in macro-F1 on the pool (0.537); and expected error reduction (Roy and McCallum: of 100 uncertain,
k-means-diverse candidates, the 50 whose label, in expectation, leaves the refitted head least unsure over 2,000
pool posts; 0.610 by expected 0/1 loss, 0.618 by entropy); and correcting the sampling bias of the labelled set,
every label weighted by the density ratio a labelled-versus-pool classifier gives (for every strategy alike; in a
replay whose batches end at 80, 130, 180 and 200 labels, where plain hybrid reached 0.626 at 200: 0.614 with the
weights clipped to [1/3, 3], 0.609 at [1/10, 10]; random at 800 unchanged, 0.639); GALAXY (Zhang et al. 2022:
bisection on each class's margin-sorted chain of the pool, each label seen before the next pick, as a person labels;
0.619, accuracy 0.726), and a cold start stratified by VADER's label (the typical posts of its negative, neutral and
positive posts, 10/10/10 or 12/6/12; 0.613 and 0.621); for every strategy alike, the embeddings reduced to 32, 64 or
128 principal components of the pool (0.595, 0.618 and 0.615; random at 800 0.613, 0.625 and 0.630: closer only by
being worse), and linear discriminant analysis with a shrunk covariance as the learner instead of the logistic
regression (5 seeds; hybrid 0.614 and 0.600 with even and with the labels' class priors, random at 800 0.631 and
0.640). What limits macro-F1 is the learner, a linear head on a frozen body: trained on all 9,540 pool labels it
reaches 0.691, and on 67 random labels of each class 0.588. A larger frozen body lifts every strategy and keeps the
gap: on all-mpnet-base-v2's embeddings hybrid's 200 give 0.709 and random's 800 0.732 (all 9,540: 0.768).
Fine-tuning the body on the chosen labels (``--fine-tune-seeds``) widens the gap: hybrid's 200 0.606, random's 800
0.700.

Works with any model that gives class probabilities (``predict_proba(texts)``); the embeddings are passed in, so
any analyzer with an encoder can be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class ProbabilisticModel(Protocol):
    """Anything that gives class probabilities for texts."""

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, classes) probabilities."""


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row, in nats (0 for a certain prediction)."""
    p = np.clip(probabilities, 1e-12, 1.0)
    result: np.ndarray = -(p * np.log(p)).sum(axis=1)
    return result


def entropy_acquisition(model: ProbabilisticModel, texts: Sequence[str], n_select: int = 50) -> list[int]:
    """The ``n_select`` most uncertain posts, most uncertain first."""
    if not texts:
        return []
    scores = entropy(model.predict_proba(texts))
    return [int(i) for i in np.argsort(-scores, kind="stable")[:n_select]]


def random_acquisition(texts: Sequence[str], n_select: int = 50, seed: int = 0) -> list[int]:
    """``n_select`` posts drawn uniformly (the baseline)."""
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.permutation(len(texts))[:n_select]]


def hybrid_acquisition(
    model: ProbabilisticModel, texts: Sequence[str], embeddings: np.ndarray, n_select: int = 50, seed: int = 0,
    prefilter: int = 10,
) -> list[int]:  # fmt: skip
    """Of the ``prefilter * n_select`` most uncertain posts, cluster the embeddings into ``n_select`` groups (k-means)
    and take from each the post the model is least sure of.

    Returned in priority order (most uncertain first). With fewer posts than ``n_select``, every post, by entropy.
    """
    if len(texts) != len(embeddings):
        raise ValueError(f"got {len(texts)} texts but {len(embeddings)} embeddings")
    if n_select < 1 or not texts:
        return []
    scores = entropy(model.predict_proba(texts))
    if len(texts) <= n_select:
        return [int(i) for i in np.argsort(-scores, kind="stable")]
    top = np.argsort(-scores, kind="stable")[: prefilter * n_select]
    clusters = _kmeans(embeddings[top], n_select, seed).labels_
    chosen = [int(top[members[np.argmax(scores[top[members]])]])
              for members in (np.flatnonzero(clusters == c) for c in range(n_select)) if len(members)]  # fmt: skip
    return sorted(chosen, key=lambda i: -scores[i])


def cold_start_acquisition(embeddings: np.ndarray, n_select: int = 30, seed: int = 0) -> list[int]:
    """Before any model has learned from labels: the post nearest the centre of each of ``n_select`` k-means clusters
    (largest cluster first), so the first labels cover the pool."""
    if n_select < 1 or not len(embeddings):
        return []
    if len(embeddings) <= n_select:
        return list(range(len(embeddings)))
    fitted = _kmeans(embeddings, n_select, seed)
    sizes = np.bincount(fitted.labels_, minlength=n_select)
    chosen = []
    for c in np.argsort(-sizes, kind="stable"):
        members = np.flatnonzero(fitted.labels_ == c)
        if len(members):
            chosen.append(int(members[np.argmin(((embeddings[members] - fitted.cluster_centers_[c]) ** 2).sum(axis=1))]))
    return chosen


def _kmeans(points: np.ndarray, k: int, seed: int) -> Any:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=1, random_state=seed).fit(points)
