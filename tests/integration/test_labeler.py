"""The sink and the labeler against a real broker, driven through stdin as a person would type."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from bizstream.records import Post
from bizstream.store.labels import LabelStore
from bizstream.store.scored import ScoredPostStore
from bizstream.stream import topics
from tests.conftest import ROOT
from tests.integration.conftest import Cluster, post_bytes

pytestmark = pytest.mark.integration


def test_sink_writes_scored_posts_for_the_labeler(cluster: Cluster, tmp_path: Path) -> None:
    store_path = tmp_path / "bizstream.sqlite"
    env = {"BIZSTREAM_STORE__PATH": str(store_path), "BIZSTREAM_STORE__KEEP_SCORED_POSTS": "150"}
    cluster.start_worker("worker", **env)
    cluster.start_worker("sink", **env)
    cluster.produce(topics.POSTS, (post_bytes(i) for i in range(200)))

    def rows() -> int:
        if not store_path.exists():
            return 0
        with sqlite3.connect(store_path) as db:
            try:
                return int(db.execute("SELECT COUNT(*) FROM scored_posts WHERE text IS NOT NULL AND label IS NOT NULL").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    cluster.wait_for(topics.SCORES, lambda m: len(m) >= 200 and rows() >= 150, timeout_s=120)
    store = ScoredPostStore(LabelStore(store_path))
    assert rows() == 150  # bounded: the newest 150 kept
    post = store.unlabelled("me", 1)[0]
    assert post.text and post.label in ("bearish", "neutral", "bullish") and post.probabilities
    log = cluster.workdir / "sink-1.log"  # and it says so in its log, within its 5 s look
    deadline = time.monotonic() + 20
    while "scored posts stored in" not in log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert f"scored posts stored in {store_path}" in log.read_text(errors="replace")


def seed_posts(store_path: Path, n: int) -> None:
    store = ScoredPostStore(LabelStore(store_path))
    posts = [Post(id=f"q{i}", text=f"post number {i} about $BTC", thread_id="t", reply_to="q0" if i else None) for i in range(n)]
    store.add_posts(posts, now=1000.0)
    vader = {"label": "bullish", "confidence": 0.7, "error": None, "details": {"compound": 0.6, "words": "moon +2.5"}}
    ocr = {"label": "bearish", "confidence": 1 / 3, "error": None, "details": {"ocr": "TO THE\nMOON", "ocr_confidence": 91.0},
           "probabilities": {"bearish": 1 / 3, "neutral": 1 / 3, "bullish": 1 / 3}}  # reads, does not judge
    store.add_scores(
        [{"post_id": p.id, "thread_id": "t", "label": "neutral", "score": 0.0, "confidence": 0.5,
          "probabilities": {"bearish": 0.25, "neutral": 0.5, "bullish": 0.25}, "scored_at": 1000.0 + i,
          "analyzers": {"vader": vader, "setfit": {"error": "timed out after 10 s"}, "ocr": ocr}}
         for i, p in enumerate(posts)],
        now=1000.0,
    )  # fmt: skip
    # Newest first: make q0 the newest so the order is q0, q1, ...
    with sqlite3.connect(store_path) as db:
        db.executemany("UPDATE scored_posts SET seen_at = ? WHERE post_id = ?", [(2000.0 - i, f"q{i}") for i in range(n)])


def label(cluster: Cluster, store_path: Path, keys: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = cluster.env(BIZSTREAM_STORE__PATH=str(store_path))
    return subprocess.run([sys.executable, "-m", "bizstream", "label", "--labeler", "ann", "--limit", "20", *extra],
                          input=keys, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip


def on_topic(cluster: Cluster) -> dict[str, int]:
    """Each post's label on the topic as a consumer that honours retractions sees it (None: retracted)."""
    latest: dict[str, int] = {}
    for m in cluster.read(topics.LABELS, timeout_s=4):
        value = orjson.loads(m.value)
        if value.get("retracted"):
            latest.pop(value["post_id"], None)
        else:
            latest[value["post_id"]] = value["rating"]
    return latest


def test_labeler_through_stdin_undo_outage_resume(cluster: Cluster, tmp_path: Path) -> None:
    store_path = tmp_path / "bizstream.sqlite"
    seed_posts(store_path, 8)
    first = label(cluster, store_path, "1u3\ns2x3u\nq\n", "--newest")  # q0: 1, undo, 3 · q1: skip · q2: 2 · x · q3: 3, undo · quit
    assert first.returncode == 0, first.stderr
    said = first.stdout
    assert "in reply to q0" in said and "model: neutral" in said
    assert "vader: bullish 70% · moon +2.5" in said and "setfit: error: timed out after 10 s" in said  # each analyzer
    assert 'ocr: read "TO THE MOON"' in said and "ocr: bearish" not in said  # OCR's uniform "label" is no opinion
    assert "> labelled q0 bearish" in said and "> skipped q1" in said  # each key confirmed
    assert "> 'x' is not a key here: 1 bearish" in said
    assert "> undone: the label of q0 (retracted on bizstream.labels.v1)" in said  # it had been sent already
    store = LabelStore(store_path)
    assert {r.post_id: r.rating for r in store.rows()} == {"q0": 3, "q2": 2}
    assert on_topic(cluster) == {"q0": 3, "q2": 2}  # q3's label was sent and retracted: the topic agrees with SQLite
    assert "2 labelled" in said and "4 labels sent to bizstream.labels.v1, 2 retracted there" in said

    second = label(cluster, store_path, "2q", "--newest")  # resumes: q0, q2 labelled and q1 skipped are not shown again
    assert second.returncode == 0, second.stderr
    assert {r.post_id: r.rating for r in store.rows()}["q3"] == 2

    cluster.broker.stop()  # the broker goes away
    third = label(cluster, store_path, "11q", "--newest")
    assert third.returncode == 0, third.stderr
    assert {r.post_id for r in store.rows()} >= {"q4", "q5"}  # kept locally
    assert "2 waiting for the broker" in third.stdout
    cluster.broker.start()  # and comes back
    fourth = label(cluster, store_path, "q", "--newest")  # the next session sends what waited
    assert fourth.returncode == 0, fourth.stderr
    assert on_topic(cluster) == {"q0": 3, "q2": 2, "q3": 2, "q4": 1, "q5": 1}


def test_active_learning_order_without_a_broker_round_trip(cluster: Cluster, tmp_path: Path) -> None:
    store_path = tmp_path / "bizstream.sqlite"
    seed_posts(store_path, 12)
    result = label(cluster, store_path, "3q")  # active learning is the default
    assert result.returncode == 0, result.stderr
    assert len(LabelStore(store_path).rows()) == 1


def test_a_restarted_sink_still_stores_posts_that_were_waiting_for_their_scores(cluster: Cluster, tmp_path: Path) -> None:
    store_path = tmp_path / "bizstream.sqlite"
    env = {"BIZSTREAM_STORE__PATH": str(store_path)}
    cluster.start_worker("sink", **env)
    cluster.produce(topics.POSTS, (post_bytes(i) for i in range(30)))  # no worker yet: no scores
    log = cluster.workdir / "sink-0.log"
    deadline = time.monotonic() + 60
    while "recent posts read back" not in log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(5)  # the sink has taken the posts and committed past them
    cluster.stop_workers()
    cluster.start_worker("sink", **env)
    cluster.start_worker("worker", **env)  # the scores come only now, after the restart
    store = ScoredPostStore(LabelStore(store_path))
    deadline = time.monotonic() + 90
    while len(store.scored(f"p{i}" for i in range(30))) < 30 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(store.scored(f"p{i}" for i in range(30))) == 30
    assert "30 recent posts read back, 30 of them still waiting for their score" in (cluster.workdir / "sink-1.log").read_text()
