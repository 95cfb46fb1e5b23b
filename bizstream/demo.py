"""The end-to-end demo: local broker, one worker process, the sample posts in, the scores out, a clean stop."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bizstream.errors import InvalidRecord
from bizstream.files import post_lines
from bizstream.records import Post, Sentiment
from bizstream.settings import PROJECT_ROOT, DashboardSettings, KafkaSettings, LimitSettings, Settings
from bizstream.stack import Stack
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
    lines, keys, texts, rejected = read_posts(posts_file, settings.limits)
    if rejected:
        say(f"{len(rejected)} of the {len(lines)} lines are not valid posts; the worker dead-letters them "
            f"(the first, line {rejected[0][0]}: {rejected[0][1]})")  # fmt: skip
    broker = LocalBroker(settings.broker)
    started_broker = not broker.status().running
    say(f"starting Kafka {settings.broker.kafka_version} on {broker.bootstrap_servers} (first run fetches it with Maven)")
    broker.start()
    stack = Stack(settings.broker.cache_path / "demo")
    try:
        asyncio.run(ensure_topics(settings.kafka))
        stack.start(["worker"])
        say(f"starting a worker (log: {stack.log('worker')})")
        started = time.time()
        produced = asyncio.run(publish(settings.kafka, topics.POSTS, zip(keys, lines, strict=True)))
        say(f"published {produced} posts to {topics.POSTS}; waiting for their scores on {topics.SCORES}")
        scores = asyncio.run(_collect(settings, set(texts), started, timeout_s, stack, texts, on_score))
        seconds = time.time() - started
        dead = asyncio.run(_count_new(settings, topics.DEADLETTER, started))
    finally:
        stack.stop()
        if started_broker and not keep_broker:
            say("stopping Kafka")
            broker.stop()
    truth = _labels(labels_file) if labels_file is not None and labels_file.exists() else {}
    judged = [s for s in scores if s["post_id"] in truth]
    agreement = sum(s["label"] == truth[str(s["post_id"])] for s in judged) / len(judged) if judged else None
    return DemoResult(produced, scores, dead, seconds, Counter(str(s["label"]) for s in scores), agreement)


def read_posts(path: Path, limits: LimitSettings) -> tuple[list[bytes], list[bytes | None], dict[str, str], list[tuple[int, str]]]:
    """A posts file (JSON lines or CSV) as the demo publishes it: every line, its key (the thread id; None for a line
    that is not a valid post), the text of each valid post by id, and (line number, why) for each invalid one, which
    is published all the same for the worker to dead-letter, but not waited for."""
    lines: list[bytes] = []
    keys: list[bytes | None] = []
    texts: dict[str, str] = {}
    rejected: list[tuple[int, str]] = []
    for number, line in enumerate(post_lines(path), start=1):
        lines.append(line)
        try:
            post = Post.from_json(line, limits)
        except InvalidRecord as exc:
            keys.append(None)
            rejected.append((number, str(exc)))
            continue
        keys.append(post.thread_id.encode())
        texts[post.id] = post.text
    return lines, keys, texts, rejected


async def _collect(
    settings: Settings,
    wanted: set[str],
    since: float,
    timeout_s: float,
    stack: Stack,
    texts: dict[str, str],
    on_score: Callable[[dict[str, object], dict[str, str]], None] | None,
) -> list[dict[str, object]]:
    seen: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + timeout_s
    while wanted - set(seen) and time.monotonic() < deadline:
        stack.check()
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


# -- the self-improving loop, end to end ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopResult:
    """What the loop demo showed: the served model's agreement with the sample labels on the evaluation holdout
    (posts no model trains on) before any label and after all of them, every decision the trainer announced, and the
    most talked-about tickers."""

    holdout_posts: int
    before: float
    after: float
    decisions: list[dict[str, object]]
    drift_events: int
    top_tickers: list[dict[str, Any]]
    dashboard: str
    seconds: float


def run_loop_demo(
    settings: Settings,
    rounds: int = 3,
    timeout_s: float = 600.0,
    say: Callable[[str], None] = print,
    on_decision: Callable[[dict[str, object]], None] | None = None,
    keep: Callable[[LoopResult], None] | None = None,
) -> LoopResult:
    """On a fresh broker of its own (free ports; the user's broker, topics, labels and models are left alone): every
    agent (bizstream.stack) and the dashboard; the sample posts scored; the sample labels sent in ``rounds`` batches,
    each big enough for a retraining job (trainer.retrain_after is set to the batch size); every decision shown as it
    comes on the models topic; then the holdout posts scored again by what serves now. ``keep``: called with the
    result while everything still runs (e.g. to leave the dashboard up until Ctrl-C)."""
    from bizstream.learning.dataset import in_holdout
    from bizstream.records import Label
    from bizstream.stack import AGENTS
    from bizstream.stream.broker import free_port

    started = time.time()
    posts = [orjson.loads(line) for line in SAMPLE_POSTS.read_bytes().splitlines() if line.strip()]
    texts = {str(p["id"]): str(p.get("text", "")) for p in posts}
    # The trainer learns from labelled text: it passes over a label of an image-only meme, and the rounds are sized by
    # the labels that count.
    truth = {i: y for i, y in _labels(SAMPLE_LABELS).items() if texts.get(i, "").strip()}
    holdout = {i for i in truth if in_holdout(i, settings.trainer.eval_share)}
    work = settings.broker.cache_path / "demo-loop"
    shutil.rmtree(work, ignore_errors=True)
    broker = LocalBroker(dataclasses.replace(settings.broker, port=free_port(), controller_port=free_port()), name="demo-loop")
    per_round = len(truth) // rounds  # the last round takes the rest: every round reaches the retraining threshold
    dashboard = f"http://{settings.dashboard.host}:{free_port()}"
    stack = Stack(work, {**os.environ, "BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                         "BIZSTREAM_STORE__PATH": str(work / "bizstream.sqlite"), "BIZSTREAM_SETFIT__REGISTRY": str(work / "models" / "setfit"),
                         "BIZSTREAM_FUSION__REGISTRY": str(work / "models" / "fusion"), "BIZSTREAM_TRACKING__ENABLED": "false",
                         "BIZSTREAM_TRAINER__RETRAIN_AFTER": str(per_round), "BIZSTREAM_DRIFT__MIN_LABELS": "50"})  # fmt: skip
    kafka = dataclasses.replace(settings.kafka, bootstrap_servers=broker.bootstrap_servers)
    local = dataclasses.replace(settings, kafka=kafka)
    say(f"starting a Kafka of its own for the demo on {broker.bootstrap_servers}")
    broker.start()
    try:
        asyncio.run(ensure_topics(kafka))
        stack.start(AGENTS, extra={"dashboard": ["--port", dashboard.rsplit(":", 1)[1]]})
        say(f"started {', '.join(AGENTS)} (logs in {work}); SetFit serves the starter model; the dashboard: {dashboard}")
        before = _holdout_agreement(local, posts, truth, holdout, stack, timeout_s, say, "all the sample posts")
        say(f"before any label: the served scores agree with the sample labels on {before:.0%} of the {len(holdout)} "
            f"holdout posts (about {settings.trainer.eval_share:.0%} of the labelled posts, chosen by id; no model ever trains on them)")  # fmt: skip
        ordered = sorted(truth)
        decisions: list[dict[str, object]] = []
        for number in range(rounds):
            batch = ordered[number * per_round : (number + 1) * per_round if number < rounds - 1 else None]
            labels = [(i.encode(), Label(i, Sentiment(truth[i]).rating, "demo", text=texts[i]).to_json()) for i in batch]
            asyncio.run(publish(kafka, topics.LABELS, labels))
            say(f"round {number + 1} of {rounds}: sent {len(batch)} labels to {topics.LABELS}; the trainer retrains (a head refit in its own process)")
            for decision in asyncio.run(_next_decisions(kafka, len(decisions), stack, timeout_s)):
                decisions.append(decision)
                if on_decision is not None:
                    on_decision(decision)
        after = _holdout_agreement(local, [p for p in posts if str(p["id"]) in holdout], truth, holdout, stack, timeout_s, say,
                                   "the holdout posts again")  # fmt: skip
        drift = asyncio.run(_count(kafka, topics.DRIFT))
        result = LoopResult(len(holdout), before, after, decisions, drift, asyncio.run(_top_tickers(kafka)), dashboard,
                            time.time() - started)  # fmt: skip
        if keep is not None:
            keep(result)
    finally:
        stack.stop()
        say("stopping the demo's Kafka")
        broker.delete()
    return result


async def _top_tickers(kafka: KafkaSettings, limit: int = 5) -> list[dict[str, Any]]:
    """The dashboard's leaderboard: the tickers with the most posts in their latest rolling window (by the posts' time,
    not by arrival: the holdout posts scored again at the end update windows hours earlier than a ticker's last one)."""
    from bizstream.dashboard.state import DashboardState

    state = DashboardState(DashboardSettings())
    async for message in read(kafka, topics.TICKERS, None, 3.0):
        state.take(topics.TICKERS, message.value)
    return state.leaderboard("rolling", limit)


def _holdout_agreement(
    settings: Settings, posts: list[dict[str, object]], truth: dict[str, str], holdout: set[str],
    stack: Stack, timeout_s: float, say: Callable[[str], None], what: str,
) -> float:  # fmt: skip
    """Publish ``posts``, wait for their new scores, and the share of holdout posts whose label agrees with ``truth``."""
    since = time.time()
    lines = [orjson.dumps(p) for p in posts]
    keys = [str(p.get("thread_id") or p["id"]).encode() for p in posts]
    asyncio.run(publish(settings.kafka, topics.POSTS, zip(keys, lines, strict=True)))
    say(f"scoring {what} ({len(posts)})")
    scores = asyncio.run(_collect(settings, {str(p["id"]) for p in posts}, since, timeout_s, stack, {}, None))
    judged = [s for s in scores if s["post_id"] in holdout]
    return sum(s["label"] == truth[str(s["post_id"])] for s in judged) / max(len(judged), 1)


async def _next_decisions(kafka: KafkaSettings, seen: int, stack: Stack, timeout_s: float) -> list[dict[str, object]]:
    """The trainer's decisions after the first ``seen``, once its job is done (every analyzer it trained decided)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stack.check()
        events = [orjson.loads(m.value) async for m in read(kafka, topics.MODELS, None, 2.0)]
        new = events[seen:]
        if new and any(e["analyzer"] == "setfit" for e in new):
            await asyncio.sleep(3)  # the learned fusion is decided right after SetFit, in the same job
            return [orjson.loads(m.value) async for m in read(kafka, topics.MODELS, None, 2.0)][seen:]
    raise RuntimeError(f"no decision from the trainer within {timeout_s:.0f} s; see its log")


async def _count(kafka: KafkaSettings, topic: str) -> int:
    return len([m async for m in read(kafka, topic, None, 2.0)])
