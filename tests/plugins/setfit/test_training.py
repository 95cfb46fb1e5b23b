from __future__ import annotations

from pathlib import Path

import numpy as np

from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.records import SENTIMENTS, Post
from bizstream_plugins.setfit.analyzer import SetfitAnalyzer, load_version
from bizstream_plugins.setfit.model import Head
from bizstream_plugins.setfit.training import SetfitTrainer, TrainProfile, refit_head
from tests.conftest import COINS, separable


def test_full_training_learns_the_separable_set(trained: tuple[ModelRegistry, ModelMetadata, Split]) -> None:
    registry, metadata, split = trained
    assert metadata.kind == "full" and metadata.metrics["accuracy"] >= 0.9  # on coins it never saw
    assert metadata.data_fingerprint == split.fingerprint()
    body = registry.body_dir(metadata.body_id)
    assert (body / "model.safetensors").is_file()
    assert not [p for p in body.rglob("*") if p.suffix in {".bin", ".pkl", ".pt"}]
    loaded = load_version(registry, metadata.version, "torch", 128)
    probabilities = loaded.model.predict_proba(["$XRP to the moon, buying more", "$XRP crashed, I lost everything"])
    assert [SENTIMENTS[i].value for i in probabilities.argmax(axis=1)] == ["bullish", "bearish"]


def test_head_fast_path_changes_predictions_after_new_labels(trained: tuple[ModelRegistry, ModelMetadata, Split]) -> None:
    registry, metadata, split = trained
    probe = ["$BTC to the moon, buying more", "$ETH to the moon, buying more"]
    before = load_version(registry, metadata.version, "torch", 128).model.predict_proba(probe)
    # New labels say "moon" posts are bearish now (the meaning flipped).
    moon = [t for t, label in zip(split.train_texts, split.train_labels, strict=True) if "moon" in t]
    relabelled = Split(
        split.train_texts + moon * 4, split.train_labels + ["bearish"] * len(moon) * 4, split.test_texts, split.test_labels
    )
    new = refit_head(registry, relabelled, parent=metadata.version)
    assert new.kind == "head" and new.body_id == metadata.body_id and new.parent == metadata.version
    assert new.metrics["train_seconds"] < 60
    after = load_version(registry, new.version, "torch", 128).model.predict_proba(probe)
    bearish = SENTIMENTS.index("bearish")
    assert (after[:, bearish] > before[:, bearish] + 0.2).all()


def test_head_round_trips_through_safetensors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    labels = [SENTIMENTS[i % 3].value for i in range(60)]
    head = Head.fit(x, labels)
    head.save(tmp_path / "h.safetensors")
    assert np.allclose(Head.load(tmp_path / "h.safetensors").predict_proba(x), head.predict_proba(x))
    two = Head.fit(x, ["bearish" if i % 2 else "bullish" for i in range(60)])  # a class with no examples
    assert two.predict_proba(x)[:, SENTIMENTS.index("neutral")].max() < 1e-6


def test_analyzer_swaps_to_a_promoted_version_between_batches(trained: tuple[ModelRegistry, ModelMetadata, Split]) -> None:
    registry, metadata, split = trained
    analyzer = SetfitAnalyzer(registry.root, runtime="torch")
    registry.promote(metadata.version)
    analyzer.load()
    posts = [Post(id=str(i), text=t, thread_id="t") for i, t in enumerate(split.test_texts[:20])]
    first = analyzer.analyze(posts)
    assert analyzer.version == metadata.version and all(p is not None for p in first)
    newer = refit_head(registry, split, parent=metadata.version)
    registry.promote(newer.version)
    analyzer.wait_for_swap()  # the watcher saw the promotion and loaded it while no batch came
    assert all(p is not None for p in analyzer.analyze(posts))
    assert analyzer.version == newer.version  # from the first batch after the promotion, not the second
    registry.promote(metadata.version)  # leave the fixture as it was
    for _ in range(3):  # promoted mid-stream: every batch is fully scored while the swap happens
        assert all(p is not None for p in analyzer.analyze(posts))
    analyzer.wait_for_swap()
    analyzer.analyze(posts)
    assert analyzer.version == metadata.version


def test_training_writes_nothing_into_the_working_directory(trained: tuple[ModelRegistry, ModelMetadata, Split]) -> None:
    # The fixture trained a full model with the current directory being the repository (where pytest runs).
    from tests.conftest import ROOT

    assert not (ROOT / "checkpoints").exists()


def test_a_trained_body_is_exported_for_serving_before_it_can_be_promoted(tmp_path: Path) -> None:
    texts, labels = separable(COINS[:2])
    trainer = SetfitTrainer(ModelRegistry(tmp_path / "registry"), mode="full", profile=TrainProfile(batch_size=16, num_epochs=1, num_iterations=1),
                            starter=False, export_onnx=True)  # fmt: skip
    version = trainer.train(Split(texts, labels, texts[:6], labels[:6]), parent=None)
    body = trainer.registry.body_dir(version.body_id)
    assert (body / "onnx" / "model.int8.onnx").is_file()  # no manual `bizstream export onnx`
    trainer.registry.promote(version.version)
    loaded = load_version(trainer.registry, version.version, "auto", 128)
    assert loaded.runtime == "onnx-int8"  # what the analyzer serves from the version's first batch
