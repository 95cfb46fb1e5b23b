from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from bizstream.learning.dataset import Split
from bizstream.learning.job import run_training_job
from bizstream.learning.pseudo import pseudo_label, strong_view
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.store.labels import LabelStore
from bizstream.store.trainer_state import RecentPosts
from tests.conftest import separable
from tests.learning.test_job import label_rows, setup


def test_strong_view_disturbs_the_wording_but_keeps_most_of_it() -> None:
    text = "sol to the moon buying more today for sure"
    views = {strong_view(text, random.Random(seed)) for seed in range(20)}
    assert len(views) > 5 and text not in views
    for view in views:
        assert view and set(view.split()) <= set(text.split()) and len(view.split()) >= 4
    assert strong_view("moon", random.Random(1), drop=1.0) == "moon"  # never empty
    assert strong_view(text, random.Random(3)) == strong_view(text, random.Random(3))


def test_only_confident_predictions_become_pseudo_labels_most_confident_first() -> None:
    posts = [("a", "one two three"), ("b", "four five six"), ("c", "seven eight nine"), ("d", "ten eleven twelve")]
    probabilities = np.array([[0.97, 0.02, 0.01], [0.2, 0.5, 0.3], [0.0, 0.01, 0.99], [0.01, 0.96, 0.03]])
    chosen = pseudo_label(posts, probabilities, threshold=0.95, limit=2, seed=0)
    assert [(p.post_id, p.label) for p in chosen] == [("c", "bullish"), ("a", "bearish")]
    assert all(p.confidence >= 0.95 for p in chosen)
    with pytest.raises(ValueError, match="threshold"):
        pseudo_label(posts, probabilities, threshold=0, limit=2, seed=0)


def test_job_adds_capped_pseudo_labels_marked_as_such(trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> None:
    settings, registry = setup(trained, tmp_path)
    store = LabelStore(settings.store_path)
    store.add(label_rows(["$BTC", "$ETH", "$SOL"], flip=False, at=1000.0))
    texts, _ = separable(["$ADA", "$XRP", "$DOT", "$AVAX", "$PEPE", "$ARB", "$LINK", "$DOGE"])
    RecentPosts(settings.store_path).remember([(f"u{i}", t) for i, t in enumerate(texts)], keep=10_000)
    result = run_training_job(settings.replace(trainer={"pseudo_threshold": 0.5}), "labels")
    mix = result.metrics["new_labels"] + result.metrics["replay_labels"]
    n_pseudo = result.metrics["pseudo_labels"]
    assert 0 < n_pseudo <= mix * 0.2 / 0.8 + 1
    pseudo = store.rows(source="pseudo")
    assert len(pseudo) == n_pseudo and all(r.labeler.startswith("pseudo:") for r in pseudo)
    assert store.count_since(0) == 45  # pseudo-labels are not new human labels
    assert not {r.post_id for r in pseudo} & {p for p, _ in RecentPosts(settings.store_path).unlabelled(1000)}
