"""The scoring worker: a faust app whose agent batches posts, scores them off the event loop, and produces Scores.

At-least-once: ``stream.take_events`` acknowledges a batch's events only when the loop body for that batch has
returned, and the body returns only after the broker has confirmed every Score and dead letter it produced; faust
commits acknowledged offsets. A worker killed mid-batch therefore leaves those posts uncommitted, and whoever takes
over their partitions scores them again (a post may be scored twice, never lost).

Validation, scoring and dead-lettering are bizstream.scoring's (shared with ``bizstream score``), run off the event
loop. Bad input never stops the agent: the raw bytes go to the dead-letter topic with the reason, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import faust

from bizstream import metrics
from bizstream.pipeline import Pipeline
from bizstream.records import Score
from bizstream.scoring import Message, score_messages
from bizstream.settings import Settings
from bizstream.stream import topics
from bizstream.stream.apps import exit_uncommitted, new_app

log = logging.getLogger(__name__)


def create_app(settings: Settings, pipeline: Pipeline) -> faust.App:
    """A faust app with bizstream's topics and the scoring agent, bound to one pipeline."""
    app, declared = new_app(settings, settings.worker.app_id, ready=lambda: bool(pipeline.analyzers))
    handler = _BatchHandler(settings, pipeline, declared[topics.SCORES], declared[topics.DEADLETTER])

    @app.agent(declared[topics.POSTS], name="bizstream.worker.posts")
    async def score_posts(stream: faust.StreamT[bytes]) -> None:
        """Score posts in batches bounded by worker.batch_size and worker.batch_timeout_s."""
        batches = cast(faust.Stream[bytes], stream).take_events(  # take_events is on Stream, not on StreamT
            settings.worker.batch_size, within=settings.worker.batch_timeout_s
        )
        log.info("scoring posts from %s as consumer group %s with %s", topics.POSTS, settings.worker.app_id,
                 ", ".join(a.name for a in pipeline.analyzers))  # fmt: skip
        async for events in batches:
            await handler.handle(events)

    return app


class _BatchHandler:
    """The agent's body, kept out of the decorator so it reads top to bottom."""

    def __init__(self, settings: Settings, pipeline: Pipeline, scores: faust.TopicT, deadletter: faust.TopicT) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.scores = scores
        self.deadletter = deadletter
        # One thread: the pipeline fans out to its analyzers' own threads; this one only keeps the loop free.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="pipeline")
        self.progress = Progress(settings.worker.progress_every)
        self.serving: dict[str, str] = {}  # analyzer -> the version the metrics report

    async def handle(self, events: Sequence[faust.EventT[bytes]]) -> None:
        """Validate, score and produce one batch; return only when the broker has everything it produced."""
        started = time.monotonic()
        messages = [_message(event) for event in events]
        loop = asyncio.get_running_loop()
        handled = await loop.run_in_executor(self.executor, score_messages, self.pipeline, messages, self.settings.limits)
        pending: list[Awaitable[Any]] = []
        for score in handled.scores:
            pending.append(await self.scores.send(key=score.thread_id.encode(), value=score.to_json(), force=True))
        for message, letter in handled.dead_letters:
            log.info("dead letter %s:%s@%s (%s): %s", message.topic, message.partition, message.offset, letter.stage,
                     letter.message)  # fmt: skip
            pending.append(await self.deadletter.send(key=message.key, value=letter.to_json(), force=True))
        # Offsets of this batch are acknowledged when we return: wait for the broker to have every record first.
        try:
            await asyncio.gather(*pending)
        except Exception:
            # The producer has already retried for its whole delivery timeout. Acking now would lose posts, and a
            # restarted agent would not see this batch again, so leave the group: whoever takes these partitions
            # (this worker, restarted by its supervisor, or another) re-reads them from the last committed offset.
            exit_uncommitted("could not produce the results of a batch")
        self.progress.add(len(handled.scores), len(handled.dead_letters), handled.scores, time.monotonic() - started)
        _count(len(messages), handled.scores, [letter.stage for _, letter in handled.dead_letters])
        for analyzer in self.pipeline.analyzers:  # the version each serves; a swapped-out one stops being reported
            version, before = str(analyzer.version), self.serving.get(analyzer.name)
            if version != before:
                if before is not None:
                    metrics.SERVING.remove(analyzer.name, before)
                metrics.SERVING.labels(analyzer.name, version).set(1)
                self.serving[analyzer.name] = version


def _count(consumed: int, scores: Sequence[Score], stages: Sequence[str]) -> None:
    """The batch in the Prometheus metrics (bizstream.metrics)."""
    metrics.CONSUMED.labels("worker", topics.POSTS).inc(consumed)
    metrics.BATCH.observe(consumed)
    metrics.SCORED.inc(len(scores))
    for stage in stages:
        metrics.DEAD.labels("worker", stage).inc()


class Progress:
    """The worker's progress line: every ``every`` posts at info, every batch at debug."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.scored = self.dead = 0
        self.window = [0, 0.0]  # posts handled and seconds spent handling them since the last line
        self.latency: dict[str, list[float]] = {}  # analyzer -> [ms, posts] since the last line

    def add(self, scored: int, dead: int, scores: Sequence[Score], seconds: float) -> None:
        """Count a batch that took ``seconds`` (scoring and producing); log the line when it is due."""
        self.scored += scored
        self.dead += dead
        self.window = [int(self.window[0]) + scored + dead, self.window[1] + seconds]
        for score in scores:  # one pass for the progress line and the Prometheus histograms
            for name, result in score.analyzers.items():
                if result is None:
                    continue
                if result.error is None:
                    ms, n = self.latency.get(name, [0.0, 0])
                    self.latency[name] = [ms + result.latency_ms, n + 1]
                    metrics.LATENCY.labels(name).observe(result.latency_ms / 1000.0)
                else:
                    metrics.ANALYZER_ERRORS.labels(name).inc()
        log.debug("batch: %d scored, %d dead-lettered in %.3f s", scored, dead, seconds)
        posts, busy = self.window
        if self.every and posts >= self.every:
            per_post = ", ".join(f"{name} {ms / n:.2f} ms" for name, (ms, n) in sorted(self.latency.items()) if n)
            log.info("%d posts scored, %d dead-lettered so far; %.0f posts/s while busy; per post: %s", self.scored,
                     self.dead, posts / max(busy, 1e-9), per_post or "-")  # fmt: skip
            self.window, self.latency = [0, 0.0], {}


def _message(event: faust.EventT[bytes]) -> Message:
    """The consumed record behind an event, as the batch runner takes it."""
    record = event.message
    return Message(
        value=record.value if isinstance(record.value, bytes) else bytes(record.value or b""),
        key=record.key if isinstance(record.key, bytes) else None,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )
