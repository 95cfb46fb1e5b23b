from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bizstream.learning.acquisition import (
    cold_start_acquisition,
    entropy,
    entropy_acquisition,
    hybrid_acquisition,
    random_acquisition,
)


class Known:
    """A 'model' whose uncertainty about each text is given."""

    def __init__(self, uncertainty: dict[str, float]) -> None:
        self.uncertainty = uncertainty

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for t in texts:
            u = self.uncertainty[t]  # 0: sure, 1: clueless
            rows.append([u / 3, u / 3, 1 - 2 * u / 3])
        return np.array(rows)


def blobs(seed: int = 0) -> tuple[list[str], np.ndarray, dict[str, float]]:
    """Three well-separated clusters of 20 posts; uncertainty rises with the index inside each cluster."""
    rng = np.random.default_rng(seed)
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    texts, points, uncertainty = [], [], {}
    for c, centre in enumerate(centres):
        for i in range(20):
            text = f"c{c}-{i}"
            texts.append(text)
            points.append(centre + rng.normal(size=2))
            uncertainty[text] = 0.01 + 0.04 * i + (0.1 if c == 0 else 0.0)  # cluster 0 is the least certain overall
    return texts, np.array(points), uncertainty


def test_hybrid_picks_from_every_cluster_and_the_most_uncertain_within_it() -> None:
    texts, embeddings, uncertainty = blobs()
    chosen = [texts[i] for i in hybrid_acquisition(Known(uncertainty), texts, embeddings, n_select=3, seed=1)]
    assert sorted(t.split("-")[0] for t in chosen) == ["c0", "c1", "c2"]  # one from each cluster
    assert all(t.endswith("-19") for t in chosen)  # the most uncertain of each
    assert chosen[0] == "c0-19"  # priority order: most uncertain first
    # Plain entropy would spend all three on cluster 0.
    assert {texts[i].split("-")[0] for i in entropy_acquisition(Known(uncertainty), texts, 3)} == {"c0"}


def test_deterministic_with_a_seed_and_fewer_posts_than_asked() -> None:
    texts, embeddings, uncertainty = blobs()
    model = Known(uncertainty)
    assert hybrid_acquisition(model, texts, embeddings, 10, seed=4) == hybrid_acquisition(model, texts, embeddings, 10, seed=4)
    few = hybrid_acquisition(model, texts[:5], embeddings[:5], n_select=50)
    assert sorted(few) == [0, 1, 2, 3, 4] and few[0] == 4  # all of them, most uncertain first
    assert hybrid_acquisition(model, [], np.zeros((0, 2)), 5) == []
    assert random_acquisition(texts, 5, seed=1) == random_acquisition(texts, 5, seed=1)
    assert len(set(random_acquisition(texts, 70))) == 60


def test_entropy() -> None:
    assert entropy(np.array([[1.0, 0.0, 0.0]]))[0] < 1e-9
    assert abs(entropy(np.array([[1 / 3] * 3]))[0] - np.log(3)) < 1e-9


def test_cold_start_covers_every_cluster_with_a_typical_post() -> None:
    texts, embeddings, _ = blobs()
    chosen = cold_start_acquisition(embeddings, n_select=3, seed=0)
    assert sorted(texts[i].split("-")[0] for i in chosen) == ["c0", "c1", "c2"]
    for i in chosen:  # the post nearest its cluster's mean
        members = [j for j, t in enumerate(texts) if t.split("-")[0] == texts[i].split("-")[0]]
        centre = embeddings[members].mean(axis=0)
        assert i == min(members, key=lambda j: float(((embeddings[j] - centre) ** 2).sum()))
    assert cold_start_acquisition(embeddings[:2], 5) == [0, 1]


def test_hybrid_only_considers_the_most_uncertain() -> None:
    texts, embeddings, uncertainty = blobs()
    # With a prefilter of 1, the 3 picks come from the 3 most uncertain posts overall (all in cluster 0).
    chosen = hybrid_acquisition(Known(uncertainty), texts, embeddings, n_select=3, prefilter=1)
    assert sorted(texts[i] for i in chosen) == ["c0-17", "c0-18", "c0-19"]
