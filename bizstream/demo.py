"""The end-to-end demo: local broker, one worker process, the sample posts in, the scores out, a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from bizstream.records import Sentiment
from bizstream.settings import PROJECT_ROOT, Settings
from bizstream.stream import topics
from bizstream.stream.broker import LocalBroker
from bizstream.stream.client import ensure_topics, publish, read

SAMPLE_POSTS = PROJECT_ROOT / "data" / "sample_posts.jsonl"
SAMPLE_LABELS = PROJECT_ROOT / "data" / "sample_labels.jsonl"


@dataclass(frozen=True)
class DemoResult:
    """What came out of one demo run."""

    produced: int
    scores: list[dict[str, object]]
    dead_letters: int
    seconds: float
    labels: Counter[str]
    agreement: float | None  # share of scores whose label matches the sample's label, when labels are known


def run_demo(
    settings: Settings,
    posts_file: Path = SAMPLE_POSTS,
    labels_file: Path | None = SAMPLE_LABELS,
    keep_broker: bool = False,
    timeout_s: float = 120.0,
    on_score: Callable[[dict[str, object], dict[str, str]], None] | None = None,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Start what is needed, stream ``posts_file`` through a worker, collect the scores, stop what it started."""
    lines = [line for line in posts_file.read_bytes().splitlines() if line.strip()]
    texts = {}
    keys = []
    for line in lines:
        obj = orjson.loads(line)
        texts[str(obj["id"])] = obj.get("text", "")
        keys.append(str(obj.get("thread_id") or obj["id"]).encode())
    broker = LocalBroker(settings.broker)
    started_broker = not broker.status().running
    say(f"starting Kafka {settings.broker.kafka_version} on {broker.bootstrap_servers} (first run fetches it with Maven)")
    broker.start()
    worker: subprocess.Popen[bytes] | None = None
    log_path = settings.broker.cache_path / "demo-worker.log"
    try:
        asyncio.run(ensure_topics(settings.kafka))
        say(f"starting a worker (log: {log_path})")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "bizstream", "worker"], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
            )
        started = time.time()
        produced = asyncio.run(publish(settings.kafka, topics.POSTS, zip(keys, lines, strict=True)))
        say(f"published {produced} posts to {topics.POSTS}; waiting for their scores on {topics.SCORES}")
        scores = asyncio.run(_collect(settings, set(texts), started, timeout_s, worker, texts, on_score))
        seconds = time.time() - started
        dead = asyncio.run(_count_new(settings, topics.DEADLETTER, started))
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if started_broker and not keep_broker:
            say("stopping Kafka")
            broker.stop()
    truth = _labels(labels_file) if labels_file is not None and labels_file.exists() else {}
    judged = [s for s in scores if s["post_id"] in truth]
    agreement = sum(s["label"] == truth[str(s["post_id"])] for s in judged) / len(judged) if judged else None
    return DemoResult(produced, scores, dead, seconds, Counter(str(s["label"]) for s in scores), agreement)


async def _collect(
    settings: Settings,
    wanted: set[str],
    since: float,
    timeout_s: float,
    worker: subprocess.Popen[bytes],
    texts: dict[str, str],
    on_score: Callable[[dict[str, object], dict[str, str]], None] | None,
) -> list[dict[str, object]]:
    seen: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + timeout_s
    while wanted - set(seen) and time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}; see its log")
        async for message in read(settings.kafka, topics.SCORES, None, timeout_s=2.0):
            score = orjson.loads(message.value)
            post_id = score["post_id"]
            if post_id in wanted and post_id not in seen and score["scored_at"] >= since:
                seen[post_id] = score
                if on_score is not None:
                    on_score(score, texts)
    return list(seen.values())


async def _count_new(settings: Settings, topic: str, since: float) -> int:
    return sum(
        [orjson.loads(m.value).get("failed_at", 0) >= since async for m in read(settings.kafka, topic, None, 2.0)]
    )


def _labels(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            row = orjson.loads(line)
            out[str(row["post_id"])] = Sentiment.from_rating(int(row["rating"])).value
    return out
