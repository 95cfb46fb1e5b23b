from __future__ import annotations

from pathlib import Path

import pytest

from bizstream.learning import suggest
from bizstream.learning.suggest import get_suggested_posts
from bizstream.records import Post
from bizstream.settings import Settings
from bizstream.store.labels import LabelRow, LabelStore
from bizstream.store.scored import ScoredPostStore


def test_suggestions_skip_labelled_posts_and_rank_uncertain_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suggest, "COLD_START_LABELS", 1)  # past the cold start (one label is enough here)
    settings = Settings().replace(store={"path": str(tmp_path / "db.sqlite")}, setfit={"registry": str(tmp_path / "none")})
    labels = LabelStore(settings.store_path)
    store = ScoredPostStore(labels)
    texts = {f"s{i}": text for i, text in enumerate(["moon soon", "rekt again", "wen lambo", "which wallet", "dump it", "ok"])}
    store.add_posts([Post(id=k, text=v, thread_id="t") for k, v in texts.items()])
    sure, unsure = {"bearish": 0.01, "neutral": 0.01, "bullish": 0.98}, {"bearish": 0.34, "neutral": 0.33, "bullish": 0.33}
    store.add_scores([{"post_id": k, "thread_id": "t", "label": "bullish", "score": 0.5, "confidence": 0.5,
                       "probabilities": unsure if k in ("s2", "s4") else sure, "scored_at": 1.0} for k in texts])  # fmt: skip
    labels.add([LabelRow("s4", "dump it", 1, "someone")])  # labelled by anyone: never suggested
    store.skip("s5", "ann")  # skipped by this labeler: not again
    for strategy in ("entropy", "hybrid", "random"):
        ids = get_suggested_posts(settings, "ann", n=10, strategy=strategy, seed=1)
        assert sorted(ids) == ["s0", "s1", "s2", "s3"], strategy
        if strategy != "random":
            assert ids[0] == "s2"  # the one the system was unsure about
    assert get_suggested_posts(settings, "ann", n=2, strategy="hybrid")[0] == "s2"
    with pytest.raises(ValueError, match="strategy"):
        get_suggested_posts(settings, "ann", strategy="vibes")


def test_before_there_are_labels_hybrid_asks_for_typical_posts(tmp_path: Path) -> None:
    settings = Settings().replace(store={"path": str(tmp_path / "db.sqlite")}, setfit={"registry": str(tmp_path / "none")})
    store = ScoredPostStore(LabelStore(settings.store_path))
    texts = {"a0": "bitcoin to the moon", "a1": "btc moon soon", "a2": "bitcoin mooning", "b0": "which wallet for eth",
             "b1": "best eth wallet?", "odd": "zzzz qqqq"}  # fmt: skip
    store.add_posts([Post(id=k, text=v, thread_id="t") for k, v in texts.items()])
    unsure = {"bearish": 0.34, "neutral": 0.33, "bullish": 0.33}
    store.add_scores([{"post_id": k, "thread_id": "t", "label": "neutral", "score": 0.0, "confidence": 0.34,
                       "probabilities": unsure, "scored_at": 1.0} for k in texts])  # fmt: skip
    ids = get_suggested_posts(settings, "ann", n=2, strategy="hybrid", seed=0)
    assert len(ids) == 2 and len(set(ids)) == 2  # two typical posts of the pool, not two of one kind
    assert not (set(ids) <= {"a0", "a1", "a2"}) and not (set(ids) <= {"b0", "b1"})
