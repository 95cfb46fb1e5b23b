from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bizstream.learning import suggest
from bizstream.learning.acquisition import entropy
from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.learning.trainers import load_trainers
from bizstream.records import Image, Post
from bizstream.settings import Settings
from bizstream.store.labels import LabelRow, LabelStore
from bizstream.store.scored import ScoredPostStore


def get_suggested_posts(settings: Settings, labeler: str, **options: Any) -> list[str]:
    """The post ids suggest() gives, in its order."""
    return [s.post_id for s in suggest.suggest(settings, labeler, **options)]


def test_suggestions_skip_labelled_posts_and_rank_uncertain_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suggest, "COLD_START_LABELS", 1)  # past the cold start (one label is enough here)
    settings = Settings().replace(store={"path": str(tmp_path / "db.sqlite")},
                                  setfit={"registry": str(tmp_path / "none"), "starter": False})  # nothing serves: as scored  # fmt: skip
    labels = LabelStore(settings.store_path)
    store = ScoredPostStore(labels)
    texts = {f"s{i}": text for i, text in enumerate(["moon soon", "rekt again", "wen lambo", "which wallet", "dump it", "ok"])}
    store.add_posts([Post(id=k, text=v, thread_id="t") for k, v in texts.items()])
    store.add_posts([Post(id="meme", text="", thread_id="t", image=Image(path="chart.png"))])  # no text: never suggested
    sure, unsure = {"bearish": 0.01, "neutral": 0.01, "bullish": 0.98}, {"bearish": 0.34, "neutral": 0.33, "bullish": 0.33}
    store.add_scores([{"post_id": k, "thread_id": "t", "label": "bullish", "score": 0.5, "confidence": 0.5,
                       "probabilities": unsure if k in ("s2", "s4", "meme") else sure, "scored_at": 1.0}
                      for k in [*texts, "meme"]])  # fmt: skip
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


def test_uncertainty_is_the_serving_models_not_the_one_posts_were_scored_with(
    trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    monkeypatch.setattr(suggest, "COLD_START_LABELS", 0)
    registry = trained[0]
    settings = Settings().replace(store={"path": str(tmp_path / "db.sqlite")}, setfit={"registry": str(registry.root), "starter": False})
    store = ScoredPostStore(LabelStore(settings.store_path))
    texts = {"s0": "$BTC to the moon, buying more", "s1": "$ETH crashed, I lost everything", "s2": "what exchange lists $SOL?",
             "s3": "hmm", "s4": "the weather is nice today", "s5": "$DOGE"}  # fmt: skip
    store.add_posts([Post(id=k, text=v, thread_id="t") for k, v in texts.items()])
    unsure, sure = {"bearish": 0.34, "neutral": 0.33, "bullish": 0.33}, {"bearish": 0.01, "neutral": 0.98, "bullish": 0.01}
    store.add_scores([{"post_id": k, "thread_id": "t", "label": "neutral", "score": 0.0, "confidence": 0.5,
                       "probabilities": unsure if k == "s0" else sure, "scored_at": 1.0} for k in texts])  # fmt: skip
    now = entropy(load_trainers(settings)["setfit"].predict_proba(registry.serving(), list(texts.values())))
    expected = [list(texts)[i] for i in np.argsort(-now, kind="stable")]
    assert expected[0] != "s0"  # scored as unsure, but what serves now is sure of it (it trained on such posts)
    assert get_suggested_posts(settings, "ann", n=6, strategy="entropy") == expected
    assert get_suggested_posts(settings, "ann", n=3, strategy="hybrid")[0] == expected[0]
    # What the serving model believes now comes with each suggestion, and the labeler shows it.
    first = suggest.suggest(settings, "ann", n=1, strategy="entropy")[0]
    probabilities = load_trainers(settings)["setfit"].predict_proba(registry.serving(), [texts[first.post_id]])[0]
    assert first.version == registry.serving() and first.now is not None
    assert np.allclose([first.now[c] for c in ("bearish", "neutral", "bullish")], probabilities, atol=1e-4)
    from typer.testing import CliRunner

    from bizstream.cli import app

    for name, value in {"STORE__PATH": str(settings.store_path), "SETFIT__REGISTRY": str(registry.root), "SETFIT__STARTER": "false"}.items():
        monkeypatch.setenv(f"BIZSTREAM_{name}", value)
    shown = CliRunner().invoke(app, ["label", "--labeler", "ann", "--limit", "1"], input="q")
    assert shown.exit_code == 0, shown.output
    assert f"setfit now: {first.belief()}" in shown.output and f"({first.version})" in shown.output


def test_a_serving_model_that_cannot_load_falls_back_to_the_scored_probabilities(
    trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # fmt: skip
    registry = ModelRegistry(tmp_path / "registry")
    shutil.copytree(trained[0].root, registry.root, symlinks=True)
    version = registry.serving()
    assert version is not None
    (registry.version_dir(version) / "head.safetensors").write_bytes(b"not a head")
    settings = Settings().replace(store={"path": str(tmp_path / "db.sqlite")}, setfit={"registry": str(registry.root), "starter": False})
    store = ScoredPostStore(LabelStore(settings.store_path))
    store.add_posts([Post(id=k, text=f"{k} to the moon", thread_id="t") for k in ("a", "b")])
    unsure, sure = {"bearish": 0.34, "neutral": 0.33, "bullish": 0.33}, {"bearish": 0.01, "neutral": 0.01, "bullish": 0.98}
    store.add_scores([{"post_id": k, "thread_id": "t", "label": "bullish", "score": 0.5, "confidence": 0.5,
                       "probabilities": unsure if k == "b" else sure, "scored_at": 1.0} for k in ("a", "b")])  # fmt: skip
    assert get_suggested_posts(settings, "ann", n=2, strategy="entropy") == ["b", "a"]
    assert f"falls back to the probabilities posts were scored with: setfit {version}" in caplog.text


def test_with_nothing_serving_yet_the_labeler_asks_the_starter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a worker or the trainer would, the labeler installs the starter on first use rather than rank by scores."""
    from bizstream_plugins.setfit.starter import VERSION

    monkeypatch.setattr(suggest, "COLD_START_LABELS", 0)
    settings = Settings().replace(store={"path": str(tmp_path / "db.sqlite")}, setfit={"registry": str(tmp_path / "registry")})
    store = ScoredPostStore(LabelStore(settings.store_path))
    texts = {"up": "$NVDA shares soar to a record high after earnings beat", "down": "$TSLA stock plunges after deliveries miss"}
    store.add_posts([Post(id=k, text=v, thread_id="t") for k, v in texts.items()])
    store.add_scores([{"post_id": k, "thread_id": "t", "label": "neutral", "score": 0.0, "confidence": 0.34,
                       "probabilities": {"bearish": 0.33, "neutral": 0.34, "bullish": 0.33}, "scored_at": 1.0} for k in texts])  # fmt: skip
    said = {s.post_id: s for s in suggest.suggest(settings, "ann", n=2, strategy="entropy")}
    assert {s.version for s in said.values()} == {VERSION}
    assert (said["up"].belief() or "").startswith("bullish") and (said["down"].belief() or "").startswith("bearish")
