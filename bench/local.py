"""A throwaway local broker and `bizstream worker` for the benchmarks that need Kafka (throughput, fuzz)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bizstream.settings import BrokerSettings, Settings  # noqa: E402
from bizstream.stream.broker import LocalBroker, free_port  # noqa: E402
from bizstream.stream.client import ensure_topics  # noqa: E402


def broker_settings(name: str) -> tuple[LocalBroker, Settings, Path]:
    """A (not yet started) broker on free ports, settings that point at it, and a work folder."""
    work = Path(tempfile.mkdtemp(prefix=f"bizstream-{name}-"))
    broker = LocalBroker(BrokerSettings(port=free_port(), controller_port=free_port()), name=f"{name}-{os.getpid()}")
    settings = Settings().replace(kafka={"bootstrap_servers": broker.bootstrap_servers, "partitions": 4}, broker={"cache_dir": str(work)})
    return broker, settings, work


@contextmanager
def running(broker: LocalBroker, settings: Settings) -> Iterator[None]:
    """The broker started with bizstream's topics; deleted afterwards."""
    broker.start()
    try:
        asyncio.run(ensure_topics(settings.kafka))
        yield
    finally:
        broker.delete()


@contextmanager
def worker(settings: Settings, work: Path, command: str = "worker", argv: list[str] | None = None, log_name: str | None = None,
           **env: str) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """A `bizstream worker` (or another agent's, or ``argv``'s) process on that broker (its log in
    work/<log_name or command>.log), terminated afterwards."""
    full = {**os.environ, "BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "BIZSTREAM_BROKER__CACHE_DIR": str(work), **env}  # fmt: skip
    with (work / f"{log_name or command}.log").open("wb") as log:
        process = subprocess.Popen(argv or [sys.executable, "-m", "bizstream", command], env=full, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
