"""Models travel over Kafka: how a promotion made on one machine reaches the workers on every other.

Publishing (the trainer agent after a job, and the CLI's ``train``, ``models promote|rollback|import --promote``):
each file of the version that serves after a decision — its head or adapter, metadata, and its body (safetensors and
the ONNX exports) — is cut into CHUNK_BYTES chunks on ``bizstream.artifacts.v1`` (compacted, keyed
``<sha256>:<index>``), and the decision goes on ``bizstream.models.v1`` (compacted, keyed by analyzer) with a
manifest: each file's path, size, SHA-256 and the partition and offset of each of its chunks. A file some earlier
announcement already carries (a body shared by many head refits) is not sent again: its chunks are referenced. The
chunks of a file that no analyzer's latest decision carries any more get tombstones, so compaction removes them (a
version that serves again, after a rollback, is sent again).

Following (every worker, :class:`ModelFollower`): at start-up it reads the models topic to its end and installs
what serves now (so a worker started later serves the current version), then follows new decisions. A version it
lacks is fetched chunk by chunk, checked against each file's size and SHA-256, and only then put in the local
registry (safetensors, ONNX and JSON only: bizstream.learning.registry) and promoted there, which the analyzers'
hot swap picks up before their next batch. A version that fails any check is refused: the old one keeps serving, and
the log and every Score (the analyzer's ``details["model_refused"]``) say so.

Trust: checksums catch corruption, not a forger. With ``kafka.models_key`` (a secret every machine shares), each
decision carries an HMAC-SHA256 of its record value in a header (bizstream.stream.signing), and followers refuse a
decision without it as they refuse a corrupt one; the manifest it signs holds every file's SHA-256, so the chunks need
none. ``kafka.labels_key`` signs the labels the decisions come from the same way.

How it scales: Kafka moves each file once per change of content, in 512 KiB records (under the broker's 1 MB default);
a MiniLM head is one chunk, its INT8 ONNX body ~45, CryptoBERT's a few hundred. Workers read only the chunks of
files they lack, by offset, no scan. Beyond a few GB of models an object store a user already runs is the better home
for the bytes, with the same manifest carrying URIs instead of offsets (not built).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bizstream.errors import BrokerError
from bizstream.learning.registry import ModelRegistry, RegistryError
from bizstream.learning.serving import NOTICES
from bizstream.records import ModelEvent
from bizstream.settings import Settings
from bizstream.stream import topics
from bizstream.stream.client import MAX_REQUEST_BYTES, start_client
from bizstream.stream.signing import sign, trusted

log = logging.getLogger(__name__)
CHUNK_BYTES = 512 * 1024


def registries(settings: Settings) -> dict[str, ModelRegistry]:
    """The registry of every analyzer whose versions travel, by analyzer name."""
    return {"setfit": ModelRegistry(settings.setfit_registry), "cryptobert": ModelRegistry(settings.cryptobert_registry),
            "fusion": ModelRegistry(settings.fusion_registry)}  # fmt: skip


def announce(settings: Settings, event: ModelEvent) -> None:
    """Publish a decision with the serving version's files; without a broker, say so in one line (the decision
    stands on this machine either way)."""
    try:
        asyncio.run(publish_decision(settings, event))
    except BrokerError as exc:
        log.warning("the decision about %s is not on %s: %s", event.version, topics.MODELS, exc)


async def publish_decision(settings: Settings, event: ModelEvent) -> ModelEvent:
    """The decision on the models topic, with the manifest of what serves after it (its files on the artifacts
    topic first); returns the event as published.

    Another writer may decide at the same time (a trainer promoting while someone rolls back): each reads what the
    latest decisions carry, so as to refer to a file already sent rather than send it again, and tombstones the files
    no latest decision carries any more. So the tombstones are chosen from the decisions as they are once this one is
    on the topic; and a file this decision refers to that another writer tombstoned meanwhile (it read the topic
    before this decision was there) is sent again, with the decision, so compaction cannot leave it pointing at
    nothing. The files of a decision another writer sent meanwhile, which this one supersedes, are tombstoned here
    too (that writer saw its decision still latest and kept them). What remains is a writer that reads the topic and
    sends its tombstones within the same few milliseconds as this decision lands."""
    registry = registries(settings).get(event.analyzer)
    serving = registry.serving() if registry is not None else None
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", linger_ms=5,
                                max_request_size=MAX_REQUEST_BYTES, max_batch_size=1024 * 1024)  # fmt: skip
    await start_client(producer, settings.kafka)
    try:
        since = await _ends(settings, topics.ARTIFACTS)
        decided = await _ends(settings, topics.MODELS)
        latest = await latest_events(settings)
        known = {f["sha256"]: f["chunks"] for e in latest.values() for f in e.artifacts.get("files", [])}
        for _ in range(3):
            manifest: dict[str, Any] = {}
            sent: dict[str, list[list[int]]] = {}
            if registry is not None and serving is not None:
                manifest = registry.manifest(serving)
                for entry in manifest["files"]:
                    if entry["sha256"] not in known:
                        sent[entry["sha256"]] = await _send_file(producer, registry, entry)
                    entry["chunks"] = known.get(entry["sha256"]) or sent[entry["sha256"]]
            published = dataclasses.replace(event, serving=serving, artifacts=manifest)
            value = published.to_json()
            await (await producer.send(topics.MODELS, value, key=event.analyzer.encode(), headers=sign(settings.kafka.models_key, value)))
            # What no latest decision carries any more is deleted from the compacted artifacts topic (a tombstone per
            # chunk), or the topic would keep every body ever trained. A version that serves again is sent again.
            # The decisions since this writer first read the topic, in order, this one among them: on top of what it
            # read, the latest ones now. One another writer sent meanwhile and this one superseded before that writer
            # looked again carries files no one else will tombstone.
            meanwhile = await _decided_since(settings, decided)
            now = {**latest, **{e.analyzer: e for e in meanwhile}}
            live = {f["sha256"] for e in now.values() for f in e.artifacts.get("files", [])}
            carried = {f["sha256"]: f["chunks"] for e in meanwhile for f in e.artifacts.get("files", [])}
            stale = {sha: chunks for sha, chunks in {**carried, **known, **sent}.items() if sha not in live}
            await asyncio.gather(*[await producer.send(topics.ARTIFACTS, None, key=f"{sha}:{i}".encode())
                                   for sha, chunks in stale.items() for i in range(len(chunks))])  # fmt: skip
            ours = now.get(event.analyzer)
            still_latest = ours is not None and (ours.version, ours.serving, ours.artifacts) == (published.version, serving, manifest)
            referred = {f["sha256"] for f in manifest.get("files", [])} - set(sent)
            gone = referred & await _tombstoned(settings, since) if still_latest and referred else set()
            if not gone:
                return published
            log.warning("%s: another writer deleted %d file(s) the decision about %s refers to; sending them again",
                        event.analyzer, len(gone), event.version)  # fmt: skip
            since = await _ends(settings, topics.ARTIFACTS)
            known = {**{sha: chunks for sha, chunks in known.items() if sha not in gone}, **sent}  # what it sent stays sent
        raise BrokerError(f"the files of {serving} kept being deleted by other writers while {event.version} was announced")
    finally:
        await producer.stop()


async def _ends(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    """Where each partition of ``topic`` ends now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, enable_auto_commit=False)
    await start_client(consumer, settings.kafka)
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(await _partitions(consumer, topic))
        return ends
    finally:
        await consumer.stop()


async def _decided_since(settings: Settings, since: Mapping[TopicPartition, int]) -> list[ModelEvent]:
    """Every decision on the models topic after ``since`` that followers would accept, superseded ones included."""
    if not since:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, enable_auto_commit=False)
    await start_client(consumer, settings.kafka)
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        seen: list[ModelEvent] = []
        await _read_to_end(consumer, settings.kafka.models_key, seen=seen)
        return seen
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic`` (none when it does not exist)."""
    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        await consumer._client.force_metadata_update()  # a topic created a moment ago
        partitions = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(partitions)]


async def _tombstoned(settings: Settings, since: Mapping[TopicPartition, int]) -> set[str]:
    """The files (by SHA-256) with a chunk tombstoned on the artifacts topic after ``since``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=2 * CHUNK_BYTES)  # fmt: skip
    await start_client(consumer, settings.kafka)
    try:
        ends = await consumer.end_offsets(list(since))
        todo = [tp for tp in since if ends[tp] > since[tp]]
        if not todo:
            return set()
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, since[tp])
        found: set[str] = set()
        deadline = asyncio.get_running_loop().time() + 60
        while any([await consumer.position(tp) < ends[tp] for tp in todo]):
            if asyncio.get_running_loop().time() > deadline:
                raise BrokerError(f"could not read {topics.ARTIFACTS} to its end within 60 s")
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found |= {(r.key or b"").decode(errors="replace").split(":")[0] for r in records if r.value is None}
        return found
    finally:
        await consumer.stop()


async def _send_file(producer: AIOKafkaProducer, registry: ModelRegistry, entry: Mapping[str, Any]) -> list[list[int]]:
    data = (registry.root / entry["path"]).read_bytes()
    pending = [await producer.send(topics.ARTIFACTS, data[at : at + CHUNK_BYTES], key=f"{entry['sha256']}:{i}".encode())
               for i, at in enumerate(range(0, max(len(data), 1), CHUNK_BYTES))]  # fmt: skip
    return [[sent.partition, sent.offset] for sent in await asyncio.gather(*pending)]


async def latest_events(settings: Settings) -> dict[str, ModelEvent]:
    """The latest decision of each analyzer on the models topic (an unreadable record is skipped, with a warning; with
    ``kafka.models_key``, so is one not signed with it)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, enable_auto_commit=False)
    await start_client(consumer, settings.kafka)
    try:
        return await _read_to_end(consumer, settings.kafka.models_key)
    finally:
        await consumer.stop()


async def _read_to_end(
    consumer: AIOKafkaConsumer, key: str, follow_s: float = 0.0, seen: list[ModelEvent] | None = None
) -> dict[str, ModelEvent]:
    """The latest decision per analyzer from where ``consumer`` is on the models topic (all of it, the first time) to
    its end (every one, in order, appended to ``seen``); with ``follow_s``, whatever arrives within that long instead.
    With a ``key``, a decision not signed with it is refused: logged, and said in the Scores of the analyzer it names
    (``model_refused``)."""
    if not consumer.assignment():
        consumer.assign(await _partitions(consumer, topics.MODELS))
        await consumer.seek_to_beginning()
    ends = {} if follow_s else await consumer.end_offsets(list(consumer.assignment()))
    latest: dict[str, ModelEvent] = {}
    while True:
        batch = await consumer.getmany(timeout_ms=int(follow_s * 1000) if follow_s else 200)
        for records in batch.values():
            for record in records:
                try:
                    event = ModelEvent.from_json(record.value or b"")
                except Exception as exc:  # boundary: a record someone else wrote; the next one may be fine
                    log.warning("skipping an unreadable record on %s@%d: %s", topics.MODELS, record.offset, exc)
                    continue
                if not trusted(key, record.value or b"", record.headers):
                    NOTICES[event.analyzer] = f"{event.serving} refused: its decision is not signed with kafka.models_key"
                    log.error("%s: refused %s from %s@%d: the decision is not signed with kafka.models_key", event.analyzer,
                              event.serving, topics.MODELS, record.offset)  # fmt: skip
                    continue
                latest[event.analyzer] = event
                if seen is not None:
                    seen.append(event)
        if follow_s or all([await consumer.position(tp) >= end for tp, end in ends.items()]):
            return latest


def catch_up(settings: Settings) -> dict[str, str]:
    """Install what the models topic says serves now, as a worker does when it starts, for a process that asks a
    serving model without following the topic (the labeler, whose trainer may be on another machine). Returns the
    versions that serve here now and did not before, by analyzer; BrokerError when there is no broker to ask."""
    follower = ModelFollower(settings)
    before = {name: registry.serving() for name, registry in follower.registries.items()}

    async def run() -> None:
        try:
            await follower.start()
        finally:
            await follower.stop()

    asyncio.run(run())
    now = {name: registry.serving() for name, registry in follower.registries.items()}
    return {name: version for name, version in now.items() if version is not None and version != before[name]}


class ModelFollower:
    """Keeps this machine's registries serving what the models topic says serves (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registries = registries(settings)
        self.latest: dict[str, ModelEvent] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.fetcher: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Connect, and install what serves now (before the analyzers load, so they load it)."""
        kafka = self.settings.kafka
        self.consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None, enable_auto_commit=False)
        self.fetcher = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                        max_partition_fetch_bytes=2 * CHUNK_BYTES)  # fmt: skip
        await start_client(self.consumer, kafka)
        await start_client(self.fetcher, kafka)
        await self._apply(await _read_to_end(self.consumer, self.settings.kafka.models_key))

    async def run(self) -> None:
        """Follow new decisions until cancelled."""
        assert self.consumer is not None
        while True:
            news = await _read_to_end(self.consumer, self.settings.kafka.models_key, follow_s=1.0)
            if news:
                await self._apply(news)

    async def stop(self) -> None:
        for client in (self.consumer, self.fetcher):
            if client is not None:
                await client.stop()

    async def _apply(self, events: Mapping[str, ModelEvent]) -> None:
        for analyzer, event in events.items():
            registry = self.registries.get(analyzer)
            if registry is None or not event.serving or registry.serving() == event.serving:
                continue
            loop = asyncio.get_running_loop()

            def fetch(entry: Mapping[str, Any]) -> bytes:
                return asyncio.run_coroutine_threadsafe(self._fetch(entry), loop).result()

            try:
                version = await loop.run_in_executor(None, registry.install, event.artifacts, fetch)
                if version != event.serving:
                    raise RegistryError(f"the manifest is for {version}, the decision for {event.serving}")
                registry.promote(version)
            except (RegistryError, OSError) as exc:
                NOTICES[analyzer] = f"{event.serving} refused: {exc}"
                log.error("%s: refused %s from %s (%s); still serving %s", analyzer, event.serving, topics.MODELS, exc,
                          registry.serving() or "nothing")  # fmt: skip
                continue
            NOTICES.pop(analyzer, None)
            log.info("%s: %s serves now, as %s announced (%s)", analyzer, version, topics.MODELS, event.why or event.reason)
            await loop.run_in_executor(None, registry.prune, self.settings.trainer.keep_versions)

    async def _fetch(self, entry: Mapping[str, Any]) -> bytes:
        """A file's bytes from its chunks on the artifacts topic (each checked to be the record the manifest names)."""
        assert self.fetcher is not None
        parts = []
        for i, (partition, offset) in enumerate(entry["chunks"]):
            tp = TopicPartition(topics.ARTIFACTS, int(partition))
            if tp not in self.fetcher.assignment():
                self.fetcher.assign([*self.fetcher.assignment(), tp])
            self.fetcher.seek(tp, int(offset))
            record = None
            for _ in range(50):
                batch = await self.fetcher.getmany(tp, timeout_ms=200, max_records=1)
                if batch.get(tp):
                    record = batch[tp][0]
                    break
            if record is None or record.offset != int(offset) or record.key != f"{entry['sha256']}:{i}".encode():
                raise RegistryError(f"chunk {i} of {entry['path']} is not at {topics.ARTIFACTS}:{partition}@{offset}")
            parts.append(record.value or b"")
        return b"".join(parts)

