"""Hostile input on a real broker (issue 12): a seeded stream of valid posts, every malformed kind, and posts that
share an id; every message is scored or dead-lettered with its exact bytes, exactly once per offset. bench/fuzz.py
runs a longer stream and reports the counts as JSON."""

from __future__ import annotations

import pytest

from bizstream.fuzzing import OVERSIZE_BYTES, account, chunks, hostile_stream, text_scorable
from bizstream.settings import LimitSettings
from bizstream.stream import topics
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration
LIMITS = LimitSettings(max_message_bytes=OVERSIZE_BYTES // 2)
scorable_id = text_scorable(LIMITS)


def test_every_hostile_message_is_scored_or_dead_lettered_once(cluster: Cluster) -> None:
    stream = hostile_stream(valid_posts=400, malformed=1600, seed=7)
    assert len(set(stream.kinds)) >= 30  # every malformed kind, valid posts and duplicate ids
    cluster.start_worker(BIZSTREAM_LIMITS__MAX_MESSAGE_BYTES=str(LIMITS.max_message_bytes))
    for part in chunks(stream.records, 400):
        cluster.produce(topics.POSTS, part)
    produced = {(m.partition, m.offset): m.value for m in cluster.read(topics.POSTS, count=len(stream.records), timeout_s=60)}
    assert len(produced) == len(stream.records)
    should_score = sum(1 for raw in produced.values() if scorable_id(raw) is not None)
    assert 0 < should_score < len(produced)
    scores = cluster.wait_for(topics.SCORES, lambda m: len(m) >= should_score, timeout_s=180)
    letters = cluster.wait_for(topics.DEADLETTER, lambda m: len(m) >= len(produced) - should_score, timeout_s=120)
    report = account(produced, [m.value for m in scores], [m.value for m in letters], scorable_id)
    assert report.problems == [] and report.scored + report.dead_lettered == len(produced)  # none lost, none twice
    assert all(worker.poll() is None for worker in cluster.workers)
