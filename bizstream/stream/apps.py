"""The faust app every bizstream agent process runs in: one consumer group, bizstream's topics declared."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import faust

from bizstream import metrics
from bizstream.errors import InvalidRecord
from bizstream.records import DeadLetter
from bizstream.settings import Settings
from bizstream.stream import leftovers, outages, topics
from bizstream.stream.client import MAX_REQUEST_BYTES, TOPIC_CONFIGS, Message, accepts, read_recent

log = logging.getLogger(__name__)
T = TypeVar("T")
EXIT_PRODUCE_FAILED = 75  # EX_TEMPFAIL: the process exits rather than commit past what it could not account for


def new_app(
    settings: Settings, app_id: str, ready: Callable[[], bool] = lambda: True
) -> tuple[faust.App, dict[str, faust.TopicT]]:
    """A faust app for consumer group ``app_id`` and its handles on every bizstream topic (raw bytes in and out),
    serving /metrics, /healthz and /readyz (bizstream.metrics; ``ready``: whatever else readiness needs)."""
    datadir = leftovers.claim(settings.broker.cache_path / "faust", app_id, f"-{uuid.uuid4().hex[:8]}")
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka.bootstrap_servers.split(",")],
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        broker_commit_interval=settings.worker.commit_interval_s,
        broker_session_timeout=settings.worker.session_timeout_s,
        broker_heartbeat_interval=settings.worker.session_timeout_s / 5,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=settings.worker.producer_linger_ms / 1000.0,
        producer_max_request_size=MAX_REQUEST_BYTES,
        web_enabled=False,
    )
    declared = {
        name: app.topic(
            name, key_type=bytes, value_type=bytes, partitions=settings.kafka.partitions,
            config=TOPIC_CONFIGS.get(name),
        )  # fmt: skip
        for name in topics.ALL
    }
    health = outages.install(settings.kafka, outages.state_file(settings.broker.cache_path, app_id))

    watched = metrics.Health(app_id, settings.metrics.stall_s, ready_check=ready)
    sock = metrics.bind(settings.metrics.host, settings.metrics.port, f"{app_id}'s metrics (metrics.port)")

    @app.task  # type: ignore[untyped-decorator]
    async def serve_metrics() -> None:
        """/metrics, /healthz, /readyz for as long as the process runs."""
        _, port = await metrics.serve(watched, sock)
        log.info("metrics and health on http://%s:%d (/metrics, /healthz, /readyz)", settings.metrics.host, port)
        health.note(metrics_url=f"http://{settings.metrics.host}:{port}")

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def watch_the_broker() -> None:
        """End an outage (and say so) once the broker answers again; keep the health answers current."""
        await health.check(accepts)
        try:  # never in the way of the outage bookkeeping above
            await asyncio.wait_for(_observe(app, watched, health), timeout=0.5)
        except Exception as exc:  # boundary: a missed reading leaves the last one; the next second tries again
            log.debug("could not read lag and progress: %s", exc)

    return app, declared


def read_back(
    app: faust.App, settings: Settings, topic: str, seconds: float, most: int, take: Callable[[Message], None],
    finish: Callable[[], str], lost: str,
) -> asyncio.Event:  # fmt: skip
    """State an agent keeps in memory is gone after a restart, while its committed offsets are past the messages that
    built it. At start, read back the newest messages of ``topic`` (the last ``seconds``, ``most`` at most) with
    ``take`` (an InvalidRecord is skipped), then log what ``finish`` returns. The Event is set when that is done, or
    has failed (logged with ``lost``: what the agent will miss); the agents that need the state wait for it."""
    done = asyncio.Event()

    @app.task  # type: ignore[untyped-decorator]
    async def read_topic_back() -> None:
        started = time.monotonic()
        try:
            async for message in read_recent(settings.kafka, topic, time.time() - seconds, most):
                try:
                    take(message)
                except InvalidRecord:
                    continue
            log.info("%s (%s read back in %.1f s)", finish(), topic, time.monotonic() - started)
        except Exception:  # boundary: without it the state fills from new messages only; say so and go on
            log.warning("could not read %s back: %s", topic, lost, exc_info=True)
        finally:
            done.set()

    return done


def status_line(app: faust.App, describe: Callable[[], str | None], every_s: float = 60.0) -> None:
    """What the agent has done, for whoever watches its log: ``describe()`` at info when it has changed, at most once
    every ``every_s`` (looked at every 5 s; None: nothing to say yet)."""
    said, said_at = "", -every_s

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def status() -> None:
        nonlocal said, said_at
        line, now = describe(), time.monotonic()
        if line and line != said and now - said_at >= every_s:
            log.info("%s", line)
            said, said_at = line, now


async def _observe(app: faust.App, watched: metrics.Health, broker: outages.BrokerHealth) -> None:
    """Lag on the partitions this process holds (messages its agents have not yet taken, prefetched or not), whether
    it handled anything since, whether its broker is down."""
    assignment = app.consumer.assignment()
    taken = app.monitor.tp_read_offsets  # the last offset an agent took from each partition
    lag = 0
    for tp in assignment:
        highwater = app.consumer.highwater(tp)
        next_offset = taken[tp] + 1 if tp in taken else await app.consumer.position(tp)
        if highwater is not None and next_offset is not None:
            lag += max(int(highwater) - int(next_offset), 0)
    watched.assigned, watched.lag = len(assignment), lag
    metrics.LAG.labels(watched.app).set(lag)
    watched.progressed(float(app.monitor.events_total))
    down = broker.down_since
    watched.broker_down_since = None if down is None else time.time() - (time.monotonic() - down)


Stage = Literal["validate", "analyze", "store"]


async def send_dead_letter(deadletter: faust.TopicT, event: faust.EventT[bytes], stage: Stage, exc: BaseException) -> Awaitable[Any]:
    """Queue a dead letter for the message behind ``event`` (its exact bytes, where it came from, why); returns the
    delivery future, which the caller awaits before acknowledging the event."""
    message = event.message
    letter = DeadLetter.for_bytes(
        bytes(message.value or b""),
        key=message.key if isinstance(message.key, bytes) else None,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        stage=stage,
        error_type=type(exc).__name__,
        message=str(exc),
    )
    log.info("dead letter %s:%s@%s (%s): %s", message.topic, message.partition, message.offset, stage, exc)
    return await deadletter.send(key=message.key, value=letter.to_json(), force=True)


async def decode_or_dead_letter(event: faust.EventT[bytes], parse: Callable[[bytes], T], deadletter: faust.TopicT) -> T | None:
    """``parse(event.value)``, or None after the message went to the dead-letter topic (confirmed) with the reason.
    Whatever ``parse`` raises is the message's fault here: the agent goes on with the next one."""
    try:
        return parse(event.value)
    except Exception as exc:  # boundary: no message can crash the agent, and none is skipped unrecorded
        await dead_letter_or_exit(deadletter, event, "validate", exc)
        return None


async def dead_letter_or_exit(deadletter: faust.TopicT, event: faust.EventT[bytes], stage: Stage, exc: BaseException) -> None:
    """Dead-letter the message behind ``event`` and wait for the broker to have it; when that fails, exit the process
    (EXIT_PRODUCE_FAILED) so its offset is not committed and the message is read again after a restart."""
    try:
        await (await send_dead_letter(deadletter, event, stage, exc))
    except Exception:
        exit_uncommitted(f"could not dead-letter {event.message.topic}:{event.message.partition}@{event.message.offset}")


def exit_uncommitted(what: str) -> None:
    """Leave now, without committing: whoever takes the partitions re-reads from the last committed offset."""
    log.critical("%s; exiting so it is read again", what, exc_info=True)
    logging.shutdown()
    os._exit(EXIT_PRODUCE_FAILED)
