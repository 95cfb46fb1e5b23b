"""Mistyped and forged labels on a real broker: the trainer stores the good ones, dead-letters every bad one with its
exact bytes and the reason, and keeps going (issue 12, item 4)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from pathlib import Path

import orjson
import pytest

from bizstream.records import Label, Sentiment
from bizstream.settings import KafkaSettings
from bizstream.store.labels import LabelStore
from bizstream.stream import topics
from bizstream.stream.client import publish
from tests.integration.conftest import Cluster
from tests.test_records import MISTYPED_LABELS

pytestmark = pytest.mark.integration


def test_the_trainer_dead_letters_mistyped_and_forged_labels_and_goes_on(cluster: Cluster, tmp_path: Path) -> None:
    store_path = tmp_path / "labels.sqlite"
    key = "a labelers' secret, 16+ characters"
    cluster.start_worker("trainer", BIZSTREAM_STORE__PATH=str(store_path), BIZSTREAM_TRAINER__RETRAIN_AFTER="100000",
                         BIZSTREAM_TRACKING__ENABLED="false", BIZSTREAM_KAFKA__LABELS_KEY=key)  # fmt: skip
    labeler = dataclasses.replace(cluster.settings.kafka, labels_key=key)  # what `bizstream label` signs with

    def send(kafka: KafkaSettings, records: list[tuple[bytes, bytes]]) -> None:
        asyncio.run(publish(kafka, topics.LABELS, records))

    good = [(f"g{i}".encode(), Label(f"g{i}", Sentiment.BULLISH.rating, "tester", text=f"moon {i}").to_json()) for i in range(5)]
    bad = [(b"bad", raw) for raw in MISTYPED_LABELS]
    send(labeler, good[:2] + bad)
    # Well-formed labels that nobody holding the key sent: unsigned, and signed with another key.
    forged = [(f"f{i}".encode(), Label(f"f{i}", Sentiment.BEARISH.rating, "mallory", text=f"rug {i}").to_json()) for i in range(2)]
    send(cluster.settings.kafka, forged[:1])
    send(dataclasses.replace(labeler, labels_key="not the labelers' secret at all"), forged[1:])
    send(labeler, good[2:])  # good ones after the bad: the agent must still be there
    letters = cluster.wait_for(topics.DEADLETTER, lambda m: len(m) >= len(bad) + len(forged), timeout_s=90)
    parsed = [orjson.loads(m.value) for m in letters]
    raws = [base64.b64decode(p["raw"]) for p in parsed]
    assert sorted(raws) == sorted([*MISTYPED_LABELS, *(value for _, value in forged)])  # each exactly, once
    assert len({(p["partition"], p["offset"]) for p in parsed}) == len(bad) + len(forged)
    assert all(p["stage"] == "validate" and p["topic"] == topics.LABELS for p in parsed)
    for raw, p in zip(raws, parsed, strict=True):
        assert (MISTYPED_LABELS.get(raw) or "not signed with kafka.labels_key") in p["message"]
    store = LabelStore(store_path)
    deadline = time.monotonic() + 30
    while store.count() < len(good) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sorted(r.post_id for r in store.rows()) == [f"g{i}" for i in range(5)]
    assert all(worker.poll() is None for worker in cluster.workers)  # no crash, no restart
    # A labeler without the key loses every label it sends: the trainer says so once, at warning, with what to set.
    log = (cluster.workdir / "trainer-0.log").read_text()
    assert log.count(f"a label on {topics.LABELS} is not signed") == 1 and "BIZSTREAM_KAFKA__LABELS_KEY" in log

    # A retraction (the labeler's undo after the label was sent): the trainer forgets that labeler's label, only that.
    retractions = [(b"g1", Label("g1", Sentiment.BULLISH.rating, "tester", retracted=True).to_json()),
                   (b"g2", Label("g2", Sentiment.BULLISH.rating, "someone-else", retracted=True).to_json())]  # fmt: skip
    send(labeler, retractions)
    deadline = time.monotonic() + 30
    while store.count() > len(good) - 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sorted(r.post_id for r in store.rows()) == ["g0", "g2", "g3", "g4"]
