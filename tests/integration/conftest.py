"""A real Apache Kafka per test (free ports, its own data folder), and helpers to run real worker processes.

The broker's jars are fetched once into the normal bizstream cache (~/.cache/bizstream, or $XDG_CACHE_HOME) and
shared; each test's broker gets its own name, ports and data, deleted afterwards, so runs never collide.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson
import pytest

from bizstream.settings import BrokerSettings, Settings
from bizstream.stream import topics
from bizstream.stream.broker import LocalBroker, free_port
from bizstream.stream.client import Message, ensure_topics, publish, read
from tests.conftest import ROOT, child_env

pytestmark = pytest.mark.integration


@dataclass
class Cluster:
    """A running broker plus what a test needs to talk to it."""

    settings: Settings
    broker: LocalBroker
    workdir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: int = 0  # processes started so far, so a restarted one gets a log of its own

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a bizstream process that talks to this cluster."""
        env = child_env()
        env.update(
            BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS=self.settings.kafka.bootstrap_servers,
            BIZSTREAM_KAFKA__PARTITIONS=str(self.settings.kafka.partitions),
            BIZSTREAM_BROKER__CACHE_DIR=str(self.workdir / "cache"),
            BIZSTREAM_WORKER__BATCH_TIMEOUT_S="0.1",
            BIZSTREAM_WORKER__SESSION_TIMEOUT_S="6",
            BIZSTREAM_SETFIT__STARTER="false",  # SetFit serves only what a test trains
            PYTHONPATH=str(ROOT),
        )
        env.update(extra)
        return env

    def start_worker(self, command: str = "worker", **extra_env: str) -> subprocess.Popen[bytes]:
        """A real `bizstream worker` (or `monitor`, `trainer`) process; its log goes to the test's folder."""
        log = (self.workdir / f"{command}-{self.started}.log").open("wb")
        self.started += 1
        process = subprocess.Popen(
            [sys.executable, "-m", "bizstream", command, "--log-level", os.environ.get("BIZSTREAM_TEST_WORKER_LOG", "info")],
            env=self.env(**extra_env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(process)
        return process

    def produce(self, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> int:
        """Publish and wait for the broker to have them."""
        return asyncio.run(publish(self.settings.kafka, topic, list(records)))

    def read(self, topic: str, count: int | None = None, timeout_s: float = 10.0) -> list[Message]:
        """Everything on a topic (committed) from its beginning, until count or timeout."""

        async def collect() -> list[Message]:
            return [m async for m in read(self.settings.kafka, topic, count, timeout_s)]

        return asyncio.run(collect())

    def wait_for(self, topic: str, done: Callable[[list[Message]], bool], timeout_s: float) -> list[Message]:
        """Re-read a topic until ``done(messages)`` or the timeout; returns the last read."""
        deadline = time.monotonic() + timeout_s
        while True:
            messages = self.read(topic, timeout_s=1.5)
            if done(messages) or time.monotonic() > deadline:
                return messages
            for worker in self.workers:
                if worker.poll() not in (None, -signal.SIGKILL):
                    raise AssertionError(f"a worker exited with {worker.returncode}; see {self.workdir}")

    def offsets(self, group: str | None, names: Iterable[str]) -> dict[str, dict[int, tuple[int | None, int]]]:
        """topic -> partition -> (what ``group`` committed, the end offset): what a failing test reports."""

        async def look() -> dict[str, dict[int, tuple[int | None, int]]]:
            from aiokafka import AIOKafkaConsumer, TopicPartition
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka.bootstrap_servers)
            consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka.bootstrap_servers)
            await admin.start()
            await consumer.start()
            try:
                committed = await admin.list_consumer_group_offsets(group) if group else {}
                tps = [TopicPartition(n, p) for n in names for p in range(self.settings.kafka.partitions)]
                ends = await consumer.end_offsets(tps)
                found: dict[str, dict[int, tuple[int | None, int]]] = {}
                for tp in tps:
                    at = committed.get(tp)
                    found.setdefault(tp.topic, {})[tp.partition] = (at.offset if at else None, ends[tp])
                return found
            finally:
                await consumer.stop()
                await admin.close()

        return asyncio.run(look())

    def stop_workers(self) -> None:
        """SIGTERM every worker still running; SIGKILL what does not stop in 20 s."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh single-node Kafka with bizstream's topics (4 partitions each), stopped and deleted afterwards."""
    broker_settings = BrokerSettings(port=free_port(), controller_port=free_port(), start_timeout_s=180.0)
    broker = LocalBroker(broker_settings, name=f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    broker.start()
    settings = Settings().replace(
        kafka={"bootstrap_servers": broker.bootstrap_servers, "partitions": 4},
        broker={"cache_dir": str(tmp_path / "cache")},
    )
    asyncio.run(ensure_topics(settings.kafka))
    c = Cluster(settings, broker, tmp_path)
    try:
        yield c
    finally:
        c.stop_workers()
        broker.delete()


def post_bytes(i: int, text: str | None = None, thread: str | None = None) -> tuple[bytes, bytes]:
    """(key, value) of a valid post."""
    thread_id = thread or f"thread-{i % 37}"
    body = {"id": f"p{i}", "thread_id": thread_id, "text": text or SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)]}
    return thread_id.encode(), orjson.dumps(body)


SAMPLE_TEXTS = [
    "this coin is going to moon",
    "got rekt again, ngmi",
    "what exchange lists $LINK?",
    "devs rugged us, bagholders everywhere",
    "wagmi frens, comfy bags 🚀",
    "sideways all week, nothing happening",
]


def scores_by_id(messages: list[Message]) -> dict[str, dict[str, object]]:
    """Scores keyed by post id (a later duplicate wins)."""
    return {s["post_id"]: s for s in (orjson.loads(m.value) for m in messages)}


__all__ = ["Cluster", "post_bytes", "scores_by_id", "replace", "topics"]
