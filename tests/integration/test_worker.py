"""The scoring worker against a real broker: counts, dead letters, failing plugins."""

from __future__ import annotations

import base64

import orjson
import pytest

from bizstream.analyzer import disagreement
from bizstream.records import Sentiment
from bizstream.stream import topics
from tests.integration.conftest import Cluster, post_bytes, scores_by_id

pytestmark = pytest.mark.integration


def test_every_post_gets_exactly_one_score(cluster: Cluster) -> None:
    n = 1000
    cluster.produce(topics.POSTS, (post_bytes(i) for i in range(n)))
    cluster.start_worker(BIZSTREAM_WORKER__BATCH_SIZE="128", BIZSTREAM_WORKER__PROGRESS_EVERY="500")
    messages = cluster.wait_for(topics.SCORES, lambda m: len(m) >= n, timeout_s=120)
    # Read again a moment later: nothing extra may trickle in.
    messages = cluster.read(topics.SCORES, timeout_s=3)
    assert len(messages) == n
    scores = [orjson.loads(m.value) for m in messages]
    assert sorted(s["post_id"] for s in scores) == sorted(f"p{i}" for i in range(n))
    for message, s in zip(messages, scores, strict=True):
        assert -1.0 <= s["score"] <= 1.0
        assert disagreement(s["score"], Sentiment(s["label"]), s["confidence"], s["probabilities"]) is None
        assert s["label"] == max(s["probabilities"], key=s["probabilities"].__getitem__)
        assert message.key == s["thread_id"].encode()  # keyed by thread id
        assert s["analyzers"]["vader"]["error"] is None
    by_id = scores_by_id(messages)
    assert by_id["p0"]["label"] == "bullish"  # "this coin is going to moon"
    assert by_id["p1"]["label"] == "bearish"  # "got rekt again, ngmi"
    # Quiet at info: what it scores with, then progress lines, not faust's and aiokafka's start-up screens.
    said = (cluster.workdir / "worker-0.log").read_text()
    assert "scoring posts from bizstream.posts.v1 as consumer group bizstream-worker with" in said
    assert said.count("dead-lettered so far") >= 1 and "Starting..." not in said and "Subscribed to topic" not in said
    # A fresh broker whose topics ensure_topics made has a group coordinator too: no aiokafka ERROR at the first join.
    assert "[ERROR]" not in said, said


def test_bad_input_goes_to_the_dead_letter_topic_and_the_rest_is_scored(cluster: Cluster) -> None:
    bad = {
        "invalid JSON": b'{"id": "x1", "text": "unterminated',
        "wrong types": b'{"id": "x2", "text": ["not", "a", "string"]}',
        "missing text": b'{"id": "x3", "thread_id": "t"}',
        "oversized text": orjson.dumps({"id": "x4", "text": "moon " * 200}),
        "invalid UTF-8": b'{"id": "x5", "text": "\xff\xfe moon"}',
        "oversized message": orjson.dumps({"id": "x6", "text": "x" * 1_500_000}),  # its dead letter is ~2 MB
    }
    reasons = {
        "invalid JSON": "not valid JSON",
        "wrong types": "'text' must be a string, got list",
        "missing text": "has no 'text'",
        "oversized text": "more than limits.max_text_chars=500",
        "invalid UTF-8": "not valid JSON (UTF-8)",
        "oversized message": "more than limits.max_message_bytes=1048576",
    }
    records: list[tuple[bytes | None, bytes]] = []
    for i, raw in enumerate(bad.values()):
        records += [post_bytes(2 * i, thread="t"), (b"t", raw), post_bytes(2 * i + 1, thread="t")]
    cluster.produce(topics.POSTS, records)
    cluster.start_worker(BIZSTREAM_LIMITS__MAX_TEXT_CHARS="500")
    scores = cluster.wait_for(topics.SCORES, lambda m: len(m) >= 2 * len(bad), timeout_s=90)
    letters = cluster.wait_for(topics.DEADLETTER, lambda m: len(m) >= len(bad), timeout_s=30)
    assert sorted(scores_by_id(scores)) == sorted(f"p{i}" for i in range(2 * len(bad)))
    assert len(letters) == len(bad)
    by_raw = {base64.b64decode(orjson.loads(m.value)["raw"]): orjson.loads(m.value) for m in letters}
    for what, raw in bad.items():
        letter = by_raw[raw]  # the exact bytes, nothing lost
        assert reasons[what] in letter["message"], (what, letter["message"])
        assert letter["stage"] == "validate" and letter["topic"] == topics.POSTS
        assert letter["offset"] >= 0 and base64.b64decode(letter["key"]) == b"t"


def test_a_raising_and_a_hanging_plugin_cost_only_their_own_output(cluster: Cluster) -> None:
    n = 200
    cluster.produce(topics.POSTS, (post_bytes(i) for i in range(n)))
    cluster.start_worker(
        BIZSTREAM_PLUGINS__LOAD='["tests.fixtures.analyzers"]',
        BIZSTREAM_WORKER__ANALYZER_TIMEOUT_S="0.5",
        BIZSTREAM_WORKER__BATCH_SIZE="50",
    )
    messages = cluster.wait_for(topics.SCORES, lambda m: len(scores_by_id(m)) >= n, timeout_s=120)
    scores = scores_by_id(messages)
    assert len(scores) == n
    for s in scores.values():
        analyzers = s["analyzers"]
        assert analyzers["vader"]["error"] is None  # the healthy analyzer still scored every post
        assert "boom" in analyzers["raiser"]["error"]
        assert "timed out" in analyzers["hanger"]["error"] or "still busy" in analyzers["hanger"]["error"]
        # The fusion is VADER's alone: the failed analyzers added nothing.
        assert s["probabilities"] == pytest.approx(analyzers["vader"]["probabilities"])
