"""The faust app every bizstream agent process runs in: one consumer group, bizstream's topics declared."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import faust

from bizstream.records import DeadLetter
from bizstream.settings import Settings
from bizstream.stream import outages, topics
from bizstream.stream.client import DEADLETTER_TOPIC_CONFIG, MAX_REQUEST_BYTES, accepts

log = logging.getLogger(__name__)
T = TypeVar("T")
EXIT_PRODUCE_FAILED = 75  # EX_TEMPFAIL: the process exits rather than commit past what it could not account for


def new_app(settings: Settings, app_id: str) -> tuple[faust.App, dict[str, faust.TopicT]]:
    """A faust app for consumer group ``app_id`` and its handles on every bizstream topic (raw bytes in and out)."""
    datadir = settings.broker.cache_path / "faust" / f"{app_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
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
            config=DEADLETTER_TOPIC_CONFIG if name == topics.DEADLETTER else None,
        )  # fmt: skip
        for name in topics.ALL
    }
    health = outages.install(settings.kafka, settings.broker.cache_path / "health" / f"{app_id}-{os.getpid()}.json")

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def watch_the_broker() -> None:
        """End an outage (and say so) once the broker answers again."""
        await health.check(accepts)

    return app, declared


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
