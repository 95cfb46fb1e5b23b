"""The drift monitor agent: remembers every Score, joins each Label to it, and publishes DriftEvents.

One monitor process per cluster: scores are keyed by thread and labels by post, so the join needs to see both
topics whole (group ``bizstream-monitor``; a second process would only split the partitions between them).

The join lives in memory. A restarted monitor reads the scores topic's last ``drift.join_ttl_s`` (at most
``drift.join_max_posts`` scores) before it takes labels, so a label of a post scored before the restart still finds
its score. ADWIN's windows start empty again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
import orjson

from bizstream import metrics
from bizstream.analyzer import has_opinion
from bizstream.errors import InvalidRecord
from bizstream.learning.drift import AnalyzerVerdict, DriftMonitor, ScoreJoin
from bizstream.records import Label, Sentiment
from bizstream.settings import Settings
from bizstream.stream import topics
from bizstream.stream.apps import decode_or_dead_letter, new_app, read_back, status_line
from bizstream.stream.client import Message
from bizstream.stream.signing import trusted

log = logging.getLogger(__name__)
APP_ID = "bizstream-monitor"


def scored_results(raw: bytes) -> tuple[str, list[AnalyzerVerdict]]:
    """Post id and per-analyzer results of a Score message. Left out: analyzers that failed on the post, and those
    that gave no opinion (equal probabilities, as OCR, which reads and does not judge: its "label" is a tie's pick,
    and its error rate would say nothing but could still raise drift events and retrain SetFit)."""
    try:
        score = orjson.loads(raw)
        results = [
            AnalyzerVerdict(name, str(r["model_version"]), Sentiment(r["label"]), float(r["score"]))
            for name, r in score["analyzers"].items()
            if r.get("error") is None and r.get("label") is not None and has_opinion(r.get("probabilities"))
        ]
        return str(score["post_id"]), results
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidRecord(f"not a Score message: {exc!r}") from None


def create_monitor_app(settings: Settings) -> faust.App:
    """The monitor's faust app: one agent on scores, one on labels, sharing the join."""
    app, declared = new_app(settings, APP_ID)
    d = settings.drift
    monitor = DriftMonitor(d.delta, d.min_labels, ScoreJoin(d.join_max_posts, d.join_ttl_s), clock=d.clock)
    deadletter, drift_topic = declared[topics.DEADLETTER], declared[topics.DRIFT]
    remembered = [0]

    def remember_score(message: Message) -> None:  # the scores the join would hold had this process run all along
        monitor.join.add(*scored_results(message.value), now=message.timestamp_ms / 1000 if message.timestamp_ms else None)
        remembered[0] += 1

    ready = read_back(app, settings, topics.SCORES, d.join_ttl_s, d.join_max_posts, remember_score,
                      lambda: f"remembered {remembered[0]} recent scores for the label join",
                      "labels of posts scored before this start are passed over")  # fmt: skip

    @app.agent(declared[topics.SCORES], name="bizstream.monitor.scores")
    async def remember(stream: faust.StreamT[bytes]) -> None:
        """Keep each post's per-analyzer results until its label arrives."""
        async for event in stream.events():
            scored = await decode_or_dead_letter(event, scored_results, deadletter)
            if scored is not None:
                monitor.on_score(*scored)

    @app.agent(declared[topics.LABELS], name="bizstream.monitor.labels")
    async def watch(stream: faust.StreamT[bytes]) -> None:
        """Feed each label's outcome to the analyzers' ADWINs; publish what they detect."""
        await ready.wait()
        async for event in stream.events():
            if not trusted(settings.kafka.labels_key, event.value, event.headers):
                continue  # a forged label is the trainer's to dead-letter; its error is no evidence of drift
            try:
                label = Label.from_json(event.value, settings.limits)
            except InvalidRecord:  # labels are the trainer's to dead-letter; here a bad one is only skipped
                continue
            if label.retracted:  # the error it showed was counted; a retraction is no new evidence
                continue
            pending: list[Any] = []
            for drift in monitor.on_label(label):
                metrics.DRIFT.labels(drift.analyzer).inc()
                log.warning("drift: %s %s error %.3f -> %.3f", drift.analyzer, drift.model_version,
                            drift.error_before, drift.error_after)  # fmt: skip
                pending.append(await drift_topic.send(key=drift.analyzer.encode(), value=drift.to_json(), force=True))
            await asyncio.gather(*pending)

    status_line(app, lambda: monitor.status() if monitor.joined + monitor.passed_over else None)

    return app
