"""Which posts a person should label next: uncertainty (entropy) for what the model does not know, k-means on the
embeddings for variety, and the most uncertain post of each cluster. Plain entropy and random orders are here to
compare against (bench/active_learning.py).

Works with any model that gives class probabilities (``predict_proba(texts)``); the embeddings are passed in, so
any analyzer with an encoder can be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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
    model: ProbabilisticModel, texts: Sequence[str], embeddings: np.ndarray, n_select: int = 50, seed: int = 0
) -> list[int]:
    """Cluster the embeddings into ``n_select`` groups (k-means); from each, the post the model is least sure of.

    Returned in priority order (most uncertain first). With fewer posts than ``n_select``, every post, by entropy.
    """
    if len(texts) != len(embeddings):
        raise ValueError(f"got {len(texts)} texts but {len(embeddings)} embeddings")
    if n_select < 1 or not texts:
        return []
    scores = entropy(model.predict_proba(texts))
    if len(texts) <= n_select:
        return [int(i) for i in np.argsort(-scores, kind="stable")]
    from sklearn.cluster import KMeans

    clusters = KMeans(n_clusters=n_select, n_init=3, random_state=seed).fit_predict(embeddings)
    chosen = []
    for cluster in range(n_select):
        members = np.flatnonzero(clusters == cluster)
        if len(members):
            chosen.append(int(members[np.argmax(scores[members])]))
    return sorted(chosen, key=lambda i: -scores[i])
