"""The scoring worker: plain aiokafka, in batches, pipelined — the one agent whose speed is the product's.

Each turn of the loop takes what the consumer has (up to ``worker.batch_size`` posts and what the pipeline scores in
about ``worker.batch_target_s``; when nothing is there it waits up to ``worker.batch_timeout_s``, and a single post
that arrives is taken at once: adaptive batching), scores it and packs the results into producer batches in a
thread, and hands them to the producer at once; only then is the previous batch settled: its acks awaited and its
offsets committed in the background, so no post waits behind another batch's commit. A batch's offsets are committed
only once the broker has confirmed every Score and dead letter it produced, so:

- **at-least-once** (the default): a worker killed mid-batch leaves those posts uncommitted, and whoever takes over
  their partitions scores them again (a post may be scored twice, never lost);
- **exactly-once** (``worker.processing_guarantee = "exactly_once"``): a batch's records and its consumed offsets go
  in one Kafka transaction; a reader with ``isolation_level=read_committed`` sees each post's Score once. The
  transactional id is stable per worker slot on a host (``<app_id>-<host>-<slot>``, the slot held by a lock file), so
  a restarted worker fences its killed predecessor and aborts what that one left open.

Rebalances: before partitions are taken away, the batch in hand is finished and its offsets committed; records a
revoked partition had already delivered are dropped unscored (the new owner reads them from the committed offset).
Validation, scoring and dead-lettering are bizstream.scoring's (shared with ``bizstream score``). Bad input never
stops the loop: its raw bytes go to the dead-letter topic with the reason.

Why not faust here: faust wraps every message in several tasks, an Event, a per-event ack and a per-message send
chain, and waits for a batch's acks before it takes the next. ``bench/throughput.py`` shows both side by side.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import gc
import logging
import math
import random
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from bizstream import metrics
from bizstream.pipeline import Pipeline
from bizstream.records import Score
from bizstream.scoring import BatchSizer, Handled, Message, score_messages
from bizstream.settings import Settings
from bizstream.stream import outages, topics
from bizstream.stream.apps import exit_uncommitted
from bizstream.stream.client import MAX_REQUEST_BYTES, accepts
from bizstream.stream.models import ModelFollower

log = logging.getLogger(__name__)
PRODUCER_BATCH_BYTES = 1024 * 1024  # aiokafka's 16 KiB default made 20k Scores ~190 round trips
# Exactly-once: a transaction spans the batches of this long under load (Kafka Streams commits every 100 ms too),
# and is committed at once when no more posts are waiting, on revocation and on stop.
TRANSACTION_S = 0.1


@dataclass
class _Batch:
    """A batch whose records are on their way: the offsets to commit once the broker has them all."""

    offsets: dict[TopicPartition, int]
    sends: list[Awaitable[Any]] = field(default_factory=list)


class Worker:
    """One worker process: consume, score, produce, commit (see the module docstring)."""

    def __init__(self, settings: Settings, pipeline: Pipeline, follower: ModelFollower | None = None) -> None:
        self.settings = settings
        self.follower = follower
        self.config = settings.worker
        self.pipeline = pipeline
        self.exactly_once = self.config.processing_guarantee == "exactly_once"
        # One thread: the pipeline fans out to its analyzers' own threads; this one only keeps the loop free.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="pipeline")
        self.progress = Progress(self.config.progress_every)
        self.sizer = BatchSizer(self.config.batch_size, self.config.batch_target_s)
        self.serving: dict[str, str] = {}  # analyzer -> the version the metrics report
        self.health = metrics.Health(self.config.app_id, settings.metrics.stall_s, ready_check=lambda: bool(pipeline.analyzers))
        self.handled = 0
        self.inflight: _Batch | None = None  # at-least-once: the batch sent and not yet confirmed
        self.committing: asyncio.Task[None] | None = None  # at-least-once: the offsets commit under way
        self.transaction: tuple[float, dict[TopicPartition, int]] | None = None  # exactly-once: (began, offsets)
        self.turn = asyncio.Lock()  # held while a batch is taken, scored and sent; a revocation waits for it
        self.stopping = asyncio.Event()
        self._slot: IO[str] | None = None
        kafka = settings.kafka
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers, group_id=self.config.app_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=self.config.batch_size,
            session_timeout_ms=int(self.config.session_timeout_s * 1000),
            heartbeat_interval_ms=int(self.config.session_timeout_s * 200), isolation_level="read_committed",
        )  # fmt: skip
        self.transactional_id = self._claim_transactional_id() if self.exactly_once else None
        self.producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers, acks="all", linger_ms=self.config.producer_linger_ms,
            max_batch_size=PRODUCER_BATCH_BYTES, max_request_size=MAX_REQUEST_BYTES,
            transactional_id=self.transactional_id,
        )  # fmt: skip

    async def run(self) -> None:
        """Until SIGTERM / SIGINT (or ``stop()``): the loop, then the last batch settled and the group left."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        broker = outages.install(self.settings.kafka, outages.state_file(self.settings.broker.cache_path, self.config.app_id))
        sock = metrics.bind(self.settings.metrics.host, self.settings.metrics.port, f"{self.config.app_id}'s metrics (metrics.port)")
        runner, port = await metrics.serve(self.health, sock)
        log.info("metrics and health on http://%s:%d (/metrics, /healthz, /readyz)", self.settings.metrics.host, port)
        broker.note(metrics_url=f"http://{self.settings.metrics.host}:{port}")
        await self.producer.start()
        if self.exactly_once:
            # Fence the predecessor with this transactional id first: its transaction is aborted before this
            # worker's consumer asks for committed offsets, which a half-committed transaction would hold back.
            await asyncio.shield(self.producer._txn_manager.wait_for_pid())
        self.consumer.subscribe([topics.POSTS], listener=_Revocation(self))
        await self.consumer.start()
        watcher = asyncio.create_task(self._watch(broker))
        following = asyncio.create_task(self.follower.run()) if self.follower is not None else None
        log.info("scoring posts from %s as consumer group %s with %s (%s)", topics.POSTS, self.config.app_id,
                 ", ".join(a.name for a in self.pipeline.analyzers),
                 f"exactly-once as {self.transactional_id}" if self.exactly_once else "at-least-once")  # fmt: skip
        try:
            while not self.stopping.is_set():
                await self.turn_once()
            async with self.turn:
                await self._settle()
                await self._settled()
        finally:
            watcher.cancel()
            if following is not None:
                following.cancel()
                await self.follower.stop()  # type: ignore[union-attr]
            await self.consumer.stop()
            await self.producer.stop()
            await runner.cleanup()
            self.executor.shutdown(wait=False)
            broker.close()

    def stop(self) -> None:
        """Finish the batch in hand and leave."""
        log.info("stopping: finishing the batch in hand")
        self.stopping.set()

    async def turn_once(self) -> None:
        """Take what is there, score and pack it, send it, then settle the previous batch (acks, then its commit in
        the background): a batch's records go to the broker as soon as they are packed, never behind a commit."""
        # With a batch unsettled, take only what has already arrived: no waiting while records could be settled.
        wait_ms = 0 if self._unsettled() else int(self.config.batch_timeout_s * 1000)
        fetched = await self.consumer.getmany(timeout_ms=wait_ms, max_records=self.sizer.size)
        async with self.turn:
            owned = self.consumer.assignment()  # a revocation since the fetch: those records are the new owner's
            records = [r for tp, rs in fetched.items() if tp in owned for r in rs]
            if not records:
                await self._settle()
                if wait_ms:  # waited, and nothing came
                    self.progress.idle()
                return
            started = time.monotonic()
            packer = _Packer(self.producer, {t: sorted(await self.producer.partitions_for(t)) for t in (topics.SCORES, topics.DEADLETTER)})
            handled = await asyncio.get_running_loop().run_in_executor(self.executor, self._score_and_pack, records, packer)
            offsets = {tp: rs[-1].offset + 1 for tp, rs in fetched.items() if tp in owned and rs}
            batch = await self._send(handled, packer, offsets)
            await self._settle(idle=False)  # the previous batch, while this one is on the wire
            if not self.exactly_once:  # exactly-once: the open transaction is what is unsettled
                self.inflight = batch
            self._account(len(records), handled, time.monotonic() - started)

    def _unsettled(self) -> bool:
        return (self.transaction is not None) if self.exactly_once else (self.inflight is not None)

    def _score_and_pack(self, records: list[Any], packer: _Packer) -> Handled:
        """In the pipeline's thread: score a batch and pack its Scores and dead letters into producer batches."""
        started = time.perf_counter()
        handled = score_messages(self.pipeline, [_message(r) for r in records], self.settings.limits)
        self.sizer.observe(len(records), time.perf_counter() - started)
        for score in handled.scores:
            packer.add(topics.SCORES, score.thread_id.encode(), score.to_json())
        for message, letter in handled.dead_letters:
            packer.add(topics.DEADLETTER, message.key, letter.to_json())
        return handled

    async def _send(self, handled: Handled, packer: _Packer, offsets: dict[TopicPartition, int]) -> _Batch:
        """Hand a batch's packed records to the producer (in the open transaction, with its offsets, when
        exactly-once)."""
        batch = _Batch(offsets)
        try:
            if self.exactly_once:
                if self.transaction is None:
                    await self.producer.begin_transaction()
                    self.transaction = (time.monotonic(), {})
                self.transaction[1].update(offsets)
            for (topic, partition), builder in packer.batches():
                batch.sends.append(await self.producer.send_batch(builder, topic, partition=partition))
            for topic, key, value in packer.oversize:
                batch.sends.append(await self.producer.send(topic, value, key=key))
        except Exception:
            exit_uncommitted("could not queue the results of a batch")
        for message, letter in handled.dead_letters:
            log.info("dead letter %s:%s@%s (%s): %s", message.topic, message.partition, message.offset, letter.stage,
                     letter.message)  # fmt: skip
        return batch

    async def _settle(self, idle: bool = True) -> None:
        """At-least-once: wait until the broker has the batch in flight, then commit its offsets in the background
        (one commit at a time, in order; ``_settled`` waits for it). Exactly-once: commit the open transaction (with
        its offsets) once it is TRANSACTION_S old, or at once when ``idle``."""
        if self.exactly_once:
            if self.transaction is None or (not idle and time.monotonic() - self.transaction[0] < TRANSACTION_S):
                return
            (_, offsets), self.transaction = self.transaction, None
            try:
                await self.producer.send_offsets_to_transaction(offsets, self.config.app_id)
                await self.producer.commit_transaction()
            except Exception:
                # Not committed: the broker aborts it, and whoever takes these partitions reads them again.
                exit_uncommitted("could not commit the transaction of a batch")
            return
        batch, self.inflight = self.inflight, None
        if batch is None:
            return
        try:
            await asyncio.gather(*batch.sends)
        except Exception:
            # The producer has already retried for its whole delivery timeout. Committing now would lose posts; leave
            # instead, and whoever takes these partitions re-reads them from the last committed offset.
            exit_uncommitted("could not produce the results of a batch")
        await self._settled()
        self.committing = asyncio.create_task(self._commit(batch.offsets))

    async def _settled(self) -> None:
        """Everything sent is confirmed and committed (before partitions go, and on stop)."""
        if not self.exactly_once and self.inflight is not None:
            await self._settle()
        committing, self.committing = self.committing, None
        if committing is not None:
            await committing

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        owned = self.consumer.assignment()
        try:
            await self.consumer.commit({tp: at for tp, at in offsets.items() if tp in owned})
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # A rebalance got there first: the new owner scores these posts again (a duplicate, never a loss).
            log.warning("could not commit a batch's offsets (%s); its posts may be scored again", exc)

    def _account(self, consumed: int, handled: Handled, seconds: float) -> None:
        """Progress line, Prometheus metrics and the version each analyzer serves."""
        self.handled += consumed
        self.progress.add(len(handled.scores), len(handled.dead_letters), handled.scores, seconds)
        metrics.CONSUMED.labels("worker", topics.POSTS).inc(consumed)
        metrics.BATCH.observe(consumed)
        metrics.SCORED.inc(len(handled.scores))
        for _, letter in handled.dead_letters:
            metrics.DEAD.labels("worker", letter.stage).inc()
        for analyzer in self.pipeline.analyzers:  # a swapped-out version stops being reported
            version, before = str(analyzer.version), self.serving.get(analyzer.name)
            if version != before:
                if before is not None:
                    metrics.SERVING.remove(analyzer.name, before)
                metrics.SERVING.labels(analyzer.name, version).set(1)
                self.serving[analyzer.name] = version

    async def _watch(self, broker: outages.BrokerHealth) -> None:
        """Once a second: the end of a broker outage, lag, progress — what /healthz and /readyz answer from."""
        while True:
            await asyncio.sleep(1.0)
            try:
                await broker.check(accepts)
                down = broker.down_since
                self.health.broker_down_since = None if down is None else time.time() - (time.monotonic() - down)
                self.health.progressed(float(self.handled))
                await asyncio.wait_for(self._observe_lag(), timeout=0.5)
            except Exception as exc:  # boundary: a missed reading leaves the last one; the next second tries again
                log.debug("could not read lag and progress: %r", exc)

    async def _observe_lag(self) -> None:
        assignment = self.consumer.assignment()
        lag = 0
        for tp in assignment:
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                lag += max(highwater - await self.consumer.position(tp), 0)
        self.health.assigned, self.health.lag = len(assignment), lag
        metrics.LAG.labels(self.config.app_id).set(lag)

    def _claim_transactional_id(self) -> str:
        """``<app_id>-<host>-<slot>``: the lowest slot on this host whose lock file no live worker holds. A worker
        restarted after a crash gets its predecessor's id, and so fences it."""
        folder = self.settings.broker.cache_path / "worker-slots"
        folder.mkdir(parents=True, exist_ok=True)
        for slot in range(1024):
            handle = (folder / f"{self.config.app_id}-{slot}.lock").open("w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            self._slot = handle  # held (open) for the life of the process
            return f"{self.config.app_id}-{socket.gethostname()}-{slot}"
        raise RuntimeError(f"no free worker slot in {folder}")


class _Revocation(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions go: the batch in hand is finished, sent and committed."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        if not revoked:
            return
        async with self.worker.turn:
            await self.worker._settle()
            await self.worker._settled()
        log.info("partitions revoked: %s", ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(revoked)))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.worker.health.assigned = len(self.worker.consumer.assignment())
        log.info("partitions assigned: %s", ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(assigned)) or "none")


def run_worker(settings: Settings, make_pipeline: Callable[[], Pipeline]) -> None:
    """Run a worker in the foreground until SIGTERM / Ctrl-C: first what the models topic says serves is installed
    (bizstream.stream.models), then the analyzers load it."""

    async def work() -> None:  # the clients need the running loop
        follower = ModelFollower(settings)
        await follower.start()
        pipeline = make_pipeline()
        # The plugins imported torch and transformers: ~0.5M objects the collector would walk twice per 20k posts.
        gc.collect()
        gc.freeze()
        await Worker(settings, pipeline, follower).run()

    asyncio.run(work())


class Progress:
    """The worker's progress line: every ``every`` posts at info, and when a wait for posts comes back empty with
    posts not yet reported (a backlog of 405 sample posts is said once it is done; a trickle at most once a minute);
    every batch at debug."""

    IDLE_LINE_EVERY_S = 60.0

    def __init__(self, every: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.scored = self.dead = 0
        self.window = [0, 0.0]  # posts handled and seconds spent handling them since the last line
        self.latency: dict[str, list[float]] = {}  # analyzer -> [ms, posts] since the last line
        self.last_line = -math.inf

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
        if self.every and self.window[0] >= self.every:
            self._line()

    def idle(self) -> None:
        """The worker waited for posts and none came: the line for those not yet reported, unless one was said
        within the last minute."""
        if self.every and self.window[0] and self.clock() - self.last_line >= self.IDLE_LINE_EVERY_S:
            self._line()

    def _line(self) -> None:
        posts, busy = self.window
        per_post = ", ".join(f"{name} {ms / n:.2f} ms" for name, (ms, n) in sorted(self.latency.items()) if n)
        log.info("%d posts scored, %d dead-lettered so far; %.0f posts/s while busy; per post: %s", self.scored,
                 self.dead, posts / max(busy, 1e-9), per_post or "-")  # fmt: skip
        self.window, self.latency, self.last_line = [0, 0.0], {}, self.clock()


class _Packer:
    """Records packed into producer batches, one per topic partition (another when one is full), in the pipeline's
    thread: the event loop then hands over a few batches instead of queueing a send per record. Partitioned as
    aiokafka's and the Java client's default partitioner does (murmur2 of the key), so a thread's Scores keep their
    partition whoever produces them; a record too big for a batch of its own goes through ``send``."""

    def __init__(self, producer: AIOKafkaProducer, partitions: dict[str, list[int]]) -> None:
        self.producer = producer
        self.partitions = partitions
        self.open: dict[tuple[str, int], BatchBuilder] = {}
        self.full: list[tuple[tuple[str, int], BatchBuilder]] = []
        self.oversize: list[tuple[str, bytes | None, bytes]] = []

    def add(self, topic: str, key: bytes | None, value: bytes) -> None:
        partitions = self.partitions[topic]
        partition = partitions[_murmur2(key) % len(partitions) if key is not None else random.randrange(len(partitions))]
        builder = self.open.get((topic, partition))
        if builder is not None and builder.append(timestamp=None, key=key, value=value) is not None:
            return
        if builder is not None:
            self.full.append(((topic, partition), builder))
        builder = self.open[(topic, partition)] = self.producer.create_batch()
        if builder.append(timestamp=None, key=key, value=value) is None:
            del self.open[(topic, partition)]
            self.oversize.append((topic, key, value))

    def batches(self) -> list[tuple[tuple[str, int], BatchBuilder]]:
        """The full batches, then the open ones, in the order they were begun per partition; closed, so the
        producer sends them at once instead of waiting ``linger_ms`` for records that will not come."""
        batches = [*self.full, *self.open.items()]
        for _, builder in batches:
            builder.close()
        return batches


@functools.lru_cache(maxsize=65536)
def _murmur2(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def _message(record: Any) -> Message:
    """A consumed record as the batch runner takes it."""
    return Message(value=record.value or b"", key=record.key, topic=record.topic, partition=record.partition,
                   offset=record.offset)  # fmt: skip

