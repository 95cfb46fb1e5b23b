"""The self-improving loop on a real broker: drift events from joined labels, and the trainer agent."""

from __future__ import annotations

import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from bizstream.learning.dataset import Split
from bizstream.learning.job import RUNNING
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.records import AnalyzerResult, DriftEvent, Label, Score, Sentiment
from bizstream.store.labels import LabelRow, LabelStore
from bizstream.store.trainer_state import TrainerState
from bizstream.stream import topics
from tests.conftest import separable
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration


def score_bytes(post_id: str, vader: Sentiment) -> tuple[bytes, bytes]:
    result = AnalyzerResult("vader", "vader-1", 0.1, score=0.8 if vader is Sentiment.BULLISH else -0.8, label=vader,
                            confidence=0.9, probabilities={"bearish": 0.05, "neutral": 0.05, "bullish": 0.9})  # fmt: skip
    score = Score(post_id, "t", 0.8, vader, 0.9, {"bearish": 0.05, "neutral": 0.05, "bullish": 0.9}, {"vader": result})
    return b"t", score.to_json()


def label_bytes(post_id: str, sentiment: Sentiment, text: str | None = None) -> tuple[bytes, bytes]:
    return post_id.encode(), Label(post_id, sentiment.rating, "tester", text=text).to_json()


def test_monitor_publishes_drift_only_after_the_error_changes(cluster: Cluster) -> None:
    rnd = random.Random(5)
    cluster.start_worker("monitor", BIZSTREAM_DRIFT__MIN_LABELS="50")

    def phase(start: int, n: int, right: float) -> None:
        ids = [f"p{i}" for i in range(start, start + n)]
        guesses = [Sentiment.BULLISH if rnd.random() < right else Sentiment.BEARISH for _ in ids]
        cluster.produce(topics.SCORES, (score_bytes(i, g) for i, g in zip(ids, guesses, strict=True)))
        time.sleep(4)  # labels come after their scores, as in life
        cluster.produce(topics.LABELS, (label_bytes(i, Sentiment.BULLISH) for i in ids))

    phase(0, 1500, right=0.9)
    assert cluster.read(topics.DRIFT, timeout_s=8) == []  # no change, no event
    phase(1500, 1500, right=0.5)  # the analyzer's error jumps from 10% to 50%
    messages = cluster.wait_for(topics.DRIFT, lambda m: len(m) >= 1, timeout_s=60)
    assert messages, "no drift event after the change"
    event = DriftEvent.from_json(messages[0].value)
    assert event.analyzer == "vader" and event.model_version == "vader-1"
    assert event.error_before < 0.2 and event.error_after > event.error_before
    labels_after_change = event.window_before + event.window_after - 1500  # every label so far, minus phase 1
    assert 0 < labels_after_change <= 400, labels_after_change


def test_a_restarted_monitor_still_joins_labels_of_posts_scored_before(cluster: Cluster) -> None:
    cluster.start_worker("monitor")
    cluster.produce(topics.SCORES, (score_bytes(f"p{i}", Sentiment.BULLISH) for i in range(300)))
    log = cluster.workdir / "monitor-0.log"
    wait_until(lambda: "recent scores for the label join" in log.read_text(errors="replace"), timeout_s=60)
    time.sleep(5)  # the first monitor has read the scores and committed past them
    cluster.stop_workers()
    cluster.start_worker("monitor")
    cluster.produce(topics.LABELS, (label_bytes(f"p{i}", Sentiment.BULLISH if i % 3 else Sentiment.BEARISH) for i in range(300)))
    log = cluster.workdir / "monitor-1.log"
    # (a status line said mid-way is followed by the next a minute later at most)
    wait_until(lambda: "300 labels joined" in log.read_text(errors="replace"), timeout_s=90)
    said = log.read_text(errors="replace")
    assert "remembered 300 recent scores" in said, said
    assert "300 labels joined to their post's score, 0 passed over" in said, said
    assert "vader 0.33 of 300" in said, said  # every third label says bearish where vader said bullish


def wait_until(done: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.5)


def trainer_env(registry: Path, store: Path, **extra: str) -> dict[str, str]:
    return {"BIZSTREAM_SETFIT__REGISTRY": str(registry), "BIZSTREAM_STORE__PATH": str(store),
            "BIZSTREAM_TRACKING__ENABLED": "false", **extra}  # fmt: skip


@pytest.fixture
def registry_copy(trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> ModelRegistry:
    registry, metadata, _ = trained
    copy = ModelRegistry(tmp_path / "registry")
    shutil.copytree(registry.root, copy.root, symlinks=True)
    copy.promote(metadata.version)
    return copy


@pytest.mark.slow
def test_trainer_stores_labels_retrains_and_announces(cluster: Cluster, registry_copy: ModelRegistry, tmp_path: Path) -> None:
    store_path = tmp_path / "labels.sqlite"
    before = registry_copy.serving()
    cluster.start_worker("trainer", **trainer_env(registry_copy.root, store_path, BIZSTREAM_TRAINER__RETRAIN_AFTER="40",
                                                  BIZSTREAM_TRAINER__GATE_MARGIN="0.5"))  # fmt: skip
    texts, labels = separable(["$BTC", "$ETH", "$SOL"])
    records = [label_bytes(f"l{i}", Sentiment(label), text) for i, (text, label) in enumerate(zip(texts, labels, strict=True))]
    cluster.produce(topics.LABELS, records + records)  # every label twice: stored once
    cluster.produce(topics.LABELS, [label_bytes("no-text", Sentiment.BULLISH)])
    events = cluster.wait_for(topics.MODELS, lambda m: len(m) >= 1, timeout_s=120)
    assert events, "no model was promoted"
    event = orjson.loads(events[0].value)
    assert event["reason"] == "labels" and event["analyzer"] == "setfit"
    assert event["promoted"] is True and event["why"] == "not worse than the serving model"
    assert registry_copy.serving() == event["version"] != before
    assert LabelStore(store_path).count() == len(texts)
    # A label without text (an image-only post's) is valid: the trainer's status line counts it as passed over, and it
    # is not dead-lettered as bad input.
    log = cluster.workdir / "trainer-0.log"
    wait_until(lambda: "1 without text passed over" in log.read_text(errors="replace"), timeout_s=90)
    assert re.search(r"\d+ labels received, 1 without text passed over \(image-only posts: nothing for a text model\), "
                     r"0 retracted; \d+ new since the last training job", log.read_text(errors="replace"))
    assert cluster.read(topics.DEADLETTER, timeout_s=2) == []

    # A drift event retrains too (once there are new labels to learn from).
    more_texts, more_labels = separable(["$ADA"])
    cluster.produce(topics.LABELS, [label_bytes(f"m{i}", Sentiment(label), text)
                                    for i, (text, label) in enumerate(zip(more_texts, more_labels, strict=True))])  # fmt: skip
    time.sleep(3)
    drift = DriftEvent("adwin", "setfit", event["version"], 0.1, 0.4, 900, 120)
    cluster.produce(topics.DRIFT, [(b"setfit", drift.to_json())])
    events = cluster.wait_for(topics.MODELS, lambda m: len(m) >= 2, timeout_s=120)
    assert [orjson.loads(e.value)["reason"] for e in events] == ["labels", "drift"]


@pytest.mark.slow
def test_a_restarted_trainer_resumes_an_interrupted_job(cluster: Cluster, registry_copy: ModelRegistry, tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite")
    texts, labels = separable(["$BTC", "$ETH"])
    store.add([LabelRow(f"l{i}", t, Sentiment(label).rating, "me") for i, (t, label) in enumerate(zip(texts, labels, strict=True))])
    TrainerState(store.path).set(**{RUNNING: "labels"})  # as a trainer killed during training leaves it
    cluster.start_worker("trainer", **trainer_env(registry_copy.root, store.path, BIZSTREAM_TRAINER__GATE_MARGIN="0.5"))
    events = cluster.wait_for(topics.MODELS, lambda m: len(m) >= 1, timeout_s=120)
    assert events and orjson.loads(events[0].value)["reason"] == "labels"
    assert TrainerState(store.path).get(RUNNING) is None
