"""Plain aiokafka clients for the CLI and the tests: create topics, publish lines, read messages."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from bizstream.errors import BrokerError
from bizstream.settings import KafkaSettings
from bizstream.stream import topics
from bizstream.stream.signing import sign

log = logging.getLogger(__name__)

# Big enough for anything the broker accepts (a dead letter carries its message base64-encoded: 4/3 its size).
MAX_REQUEST_BYTES = 16 * 1024 * 1024
# Topic-level settings: the dead letter of any post the broker accepted fits; the models topic keeps the latest
# decision per analyzer and the artifacts topic each chunk's latest copy, for as long as the topic exists.
TOPIC_CONFIGS = {
    topics.DEADLETTER: {"max.message.bytes": str(MAX_REQUEST_BYTES)},
    topics.MODELS: {"cleanup.policy": "compact"},
    topics.ARTIFACTS: {"cleanup.policy": "compact"},
}


@dataclass(frozen=True)
class Message:
    """One consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None


async def ensure_topics(kafka: KafkaSettings, names: Sequence[str] = topics.ALL) -> None:
    """Create bizstream's topics with the configured partition count; ones that exist are left alone. Returns once
    every partition has a leader and consumer groups have a coordinator, so the agents started next begin quietly."""
    async with _admin(kafka) as admin:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name, num_partitions=kafka.partitions, replication_factor=kafka.replication_factor,
                topic_configs=TOPIC_CONFIGS.get(name, {}),
            )  # fmt: skip
            for name in names
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created them first
        await _wait_for_leaders(admin, list(names), timeout_s=30.0)
        await _wait_for_coordinator(admin, timeout_s=30.0)


async def ensure_topic(kafka: KafkaSettings, name: str) -> None:
    """Before a person's produce or consume: bizstream's topics are created as they should be (:func:`ensure_topics`);
    any other must exist already. The local broker, like Kafka's default, creates a topic the first time a client
    names it: a mistyped full name would become a new, empty topic, so it is refused instead."""
    if name in topics.ALL:
        await ensure_topics(kafka)
        return
    async with _admin(kafka) as admin:
        existing = set(await admin.list_topics())
    if name not in existing:
        raise BrokerError(f"no topic {name!r} on {kafka.bootstrap_servers}; bizstream's are {', '.join(topics.ALIASES)} "
                          f"(aliases), and any other must exist already: a mistyped name is not created")  # fmt: skip


@asynccontextmanager
async def _admin(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    try:
        with _quiet_start():
            await admin.start()
    except KafkaConnectionError:
        raise BrokerError(_unreachable(kafka)) from None
    try:
        yield admin
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float) -> None:
    """Until every partition has a leader: producing to a brand-new topic otherwise starts with retries."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        if all(t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
            return
        if time.monotonic() > deadline:
            raise BrokerError(f"topics {names} still have partitions without a leader after {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


async def _wait_for_coordinator(admin: AIOKafkaAdminClient, timeout_s: float) -> None:
    """Until the broker names a group coordinator. A fresh broker creates its offsets topic at the first such request
    and answers "not available" meanwhile; a consumer retries that on its own, but logs it at ERROR first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await admin.find_coordinator("bizstream-ready")
            return
        except KafkaError as error:
            if not error.retriable or time.monotonic() > deadline:
                raise BrokerError(f"the broker names no consumer group coordinator: {error}") from None
        await asyncio.sleep(0.2)


async def publish(kafka: KafkaSettings, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Publish (key, value) pairs and wait until the broker has them all; returns how many. Labels are signed with
    ``kafka.labels_key`` when it is set (bizstream.stream.signing)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, acks="all", linger_ms=5, max_request_size=MAX_REQUEST_BYTES
    )
    await start_client(producer, kafka)
    try:
        key_of = kafka.labels_key if topic == topics.LABELS else ""
        pending = [await producer.send(topic, value=value, key=key, headers=sign(key_of, value)) for key, value in records]
        await asyncio.gather(*pending)
        return len(pending)
    finally:
        await producer.stop()


async def read(
    kafka: KafkaSettings, topic: str, count: int | None, timeout_s: float | None, idle_s: float | None = None,
    from_end: bool = False,
) -> AsyncIterator[Message]:  # fmt: skip
    """Messages of ``topic`` (every partition, no consumer group) from its start, or only new ones (``from_end``),
    until ``count`` of them, ``timeout_s`` in all, or ``idle_s`` without one (None: no such limit).
    Read committed: records of an aborted transaction (an exactly-once worker's) are never seen."""
    # Without a group, aiokafka assigns every partition of the subscribed topic to this consumer.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap_servers, group_id=None, enable_auto_commit=False,
        auto_offset_reset="latest" if from_end else "earliest", metadata_max_age_ms=1000,
        isolation_level="read_committed",
    )  # fmt: skip
    await start_client(consumer, kafka)
    try:
        started = last = time.monotonic()
        seen = 0
        while count is None or seen < count:
            now = time.monotonic()
            left = min((started + timeout_s - now) if timeout_s is not None else math.inf,
                       (last + idle_s - now) if idle_s is not None else math.inf)  # fmt: skip
            if left <= 0:
                return
            batch = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for records in batch.values():
                last = time.monotonic()
                for r in records:
                    yield Message(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
                    seen += 1
                    if count is not None and seen >= count:
                        return
    finally:
        await consumer.stop()


async def read_recent(
    kafka: KafkaSettings, topic: str, since: float, most: int, timeout_s: float = 120.0
) -> AsyncIterator[Message]:
    """The records of ``topic`` written since ``since`` (epoch seconds), at most about ``most`` of them (the newest,
    shared evenly between partitions), up to where each partition ended when this began, or what came within
    ``timeout_s``. No consumer group; read committed."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")  # fmt: skip
    await start_client(consumer, kafka)
    try:
        partitions = sorted(consumer.assignment())  # without a group: every partition of the topic, once started
        if not partitions:
            return
        ends, begins = await consumer.end_offsets(partitions), await consumer.beginning_offsets(partitions)
        by_time = await consumer.offsets_for_times({tp: int(since * 1000) for tp in partitions})
        share = max(1, most // len(partitions))
        for tp in partitions:
            found = by_time.get(tp)
            consumer.seek(tp, max(found.offset if found is not None else ends[tp], ends[tp] - share, begins[tp]))
        left = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        deadline = time.monotonic() + timeout_s
        while left and time.monotonic() < deadline:
            batch = await consumer.getmany(*left, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends[tp]:
                        yield Message(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
            left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()


async def start_client(client: AIOKafkaProducer | AIOKafkaConsumer, kafka: KafkaSettings) -> None:
    """Start a client; BrokerError in one line when the broker is not there."""
    try:
        with _quiet_start():
            await client.start()
    except KafkaConnectionError:
        await client.stop()
        raise BrokerError(_unreachable(kafka)) from None


@contextmanager
def _quiet_start() -> Iterator[None]:
    """aiokafka's own ERROR line about a refused connection is held back while a client starts: the BrokerError that
    follows says it once, with what to do."""
    chatty = logging.getLogger("aiokafka")
    level = chatty.level
    chatty.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        chatty.setLevel(level)


async def wait_for_broker(kafka: KafkaSettings, say: Callable[[str], None] = log.warning) -> float:
    """Until a bootstrap server accepts a connection, backing off with jitter (0.25 s, doubling up to 5 s); the wait
    is said once. Returns the seconds waited; BrokerError (the usual one line) after kafka.connect_timeout_s."""
    started = time.monotonic()
    delay = 0.25
    said = False
    while True:
        if await accepts(kafka):
            if said:
                say(f"Kafka at {kafka.bootstrap_servers} is up after {time.monotonic() - started:.1f} s")
            return time.monotonic() - started
        left = kafka.connect_timeout_s - (time.monotonic() - started)
        if left <= 0:
            raise BrokerError(_unreachable(kafka) + f" (waited {kafka.connect_timeout_s:.0f} s: kafka.connect_timeout_s)")
        if not said:
            say(f"waiting up to {kafka.connect_timeout_s:.0f} s for Kafka at {kafka.bootstrap_servers} (kafka.connect_timeout_s)")
            said = True
        await asyncio.sleep(min(left, delay * random.uniform(0.5, 1.0)))
        delay = min(delay * 2, 5.0)


async def accepts(kafka: KafkaSettings) -> bool:
    """Whether any bootstrap server accepts a TCP connection now (within a second)."""
    for server in kafka.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=1.0)
        except (OSError, asyncio.TimeoutError):
            continue
        writer.close()
        return True
    return False


def _unreachable(kafka: KafkaSettings) -> str:
    return (
        f"cannot reach Kafka at {kafka.bootstrap_servers}; start the local broker with `bizstream broker start` "
        f"or set BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS"
    )
