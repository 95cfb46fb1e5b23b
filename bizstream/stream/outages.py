"""Broker outages, seen from an agent process: said once when they start, once when they end, never a flood.

When Kafka goes away, aiokafka's client loops (metadata, fetch, heartbeat, coordinator) retry on their own and log an
ERROR per attempt: ~95 lines a second on a quiet worker, thousands on a busy one. Here:

- :class:`OutageLog`, a filter on aiokafka's loggers, turns the first connection error into one WARNING ("Kafka
  unreachable ...") and drops the rest, counting them;
- :func:`patient_connections` makes every reconnection attempt to a broker that just refused one wait first, with
  exponential back-off and jitter (0.1 s doubling to 5 s), so no loop spins a core while the broker is down;
- :class:`BrokerHealth` is the state: up, or down since when; :meth:`BrokerHealth.check`, called every second by the
  app's timer, probes the bootstrap servers once errors have gone quiet and logs the end of the outage with how long
  it lasted. The state is also written to ``<cache>/health/<app>@<host>-<pid>.json`` for supervisors and dashboards (it
  goes with its process: :mod:`bizstream.stream.leftovers`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bizstream.settings import KafkaSettings
from bizstream.stream import leftovers

log = logging.getLogger(__name__)
QUIET_S = 2.0  # no connection error for this long, and a bootstrap server accepts: the outage is over
# What aiokafka says when it cannot reach a broker at all (not a broker's own error, such as a coordinator that is
# not ready yet on a fresh cluster: those still reach the log as they are).
CONNECTION_TROUBLE = (
    "Unable connect to node", "Unable to update metadata", "Unable to request metadata", "NodeNotReadyError",
    "KafkaConnectionError", "Connect call failed",
)  # fmt: skip


class BrokerHealth:
    """Whether this process reaches Kafka: ``down_since`` is None while it does."""

    def __init__(self, kafka: KafkaSettings, state_file: Path | None = None) -> None:
        self.kafka = kafka
        self.state_file = state_file
        self.down_since: float | None = None
        self.last_error = 0.0
        self.suppressed = 0
        self.outages = 0
        self.facts: dict[str, Any] = {}
        self._write()

    def failed(self, what: str) -> bool:
        """Record a connection error; True for the first one of an outage (the one to say)."""
        self.last_error = time.monotonic()
        if self.down_since is not None:
            self.suppressed += 1
            return False
        self.down_since, self.suppressed = time.monotonic(), 0
        self.outages += 1
        self._write(first_error=what)
        return True

    async def check(self, accepts: Callable[[KafkaSettings], Awaitable[bool]]) -> float | None:
        """During an outage whose errors have gone quiet, probe the broker; when it answers, the outage is over:
        say so (with how long it lasted) and return its length in seconds."""
        if self.down_since is None or time.monotonic() - self.last_error < QUIET_S or not await accepts(self.kafka):
            return None
        lasted = time.monotonic() - self.down_since
        log.warning("Kafka reachable again after %.1f s (%d connection errors not shown)", lasted, self.suppressed)
        self.down_since = None
        self._write(last_outage_s=round(lasted, 1))
        return lasted

    def note(self, **facts: Any) -> None:
        """Facts the state file keeps from now on (e.g. where the process serves its metrics)."""
        self.facts.update(facts)
        self._write()

    def close(self) -> None:
        """The process is leaving: its state file goes with it (for one that ends with os._exit, like the worker,
        which skips what atexit would do)."""
        if self.state_file is not None:
            leftovers.remove(self.state_file)

    def _write(self, **extra: Any) -> None:
        if self.state_file is None:
            return
        state = {"kafka": "down" if self.down_since is not None else "up", "bootstrap_servers": self.kafka.bootstrap_servers,
                 "down_for_s": round(time.monotonic() - self.down_since, 1) if self.down_since is not None else 0.0,
                 "outages": self.outages, "updated_at": time.time(), **self.facts, **extra}  # fmt: skip
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.state_file)


class OutageLog(logging.Filter):
    """Drops aiokafka's connection errors; the first of an outage becomes one WARNING that says what is going on."""

    def __init__(self, health: BrokerHealth) -> None:
        super().__init__()
        self.health = health

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if not any(marker in message for marker in CONNECTION_TROUBLE):
            return True
        if self.health.failed(message):  # said in our own words, from our own logger; the original is dropped
            log.warning("Kafka unreachable at %s (%s); retrying with back-off, quiet until it is back",
                        self.health.kafka.bootstrap_servers, message[:200])  # fmt: skip
        return False


def install(kafka: KafkaSettings, state_file: Path | None) -> BrokerHealth:
    """Health state (kept in ``state_file``: see :func:`state_file`), the filter on every aiokafka logger, and patient
    reconnection, for this process."""
    health = BrokerHealth(kafka, state_file)
    quiet = OutageLog(health)
    import aiokafka.client  # noqa: F401  (its loggers must exist to get the filter)
    import aiokafka.consumer.fetcher  # noqa: F401
    import aiokafka.consumer.group_coordinator  # noqa: F401

    for name in [n for n in logging.root.manager.loggerDict if n.startswith(("aiokafka", "faust.transport"))]:
        logging.getLogger(name).addFilter(quiet)
    patient_connections()
    return health


def state_file(cache: Path, app_id: str) -> Path:
    """Where this process keeps its health state: ``<cache>/health/<app>@<host>-<pid>.json``, gone with it."""
    return leftovers.claim(cache / "health", app_id, ".json")


_patched = False


def patient_connections(first_s: float = 0.1, longest_s: float = 5.0) -> None:
    """Make aiokafka's client wait before reconnecting to a node that refused it, longer each time (with jitter),
    until a connection succeeds. Its own loops retry without such a pause, which spins a core during an outage."""
    global _patched
    if _patched:
        return
    from aiokafka.client import AIOKafkaClient

    original = AIOKafkaClient._get_conn
    backoff: dict[Any, tuple[float, float]] = {}  # node -> (earliest next attempt, current delay)

    async def _get_conn(self: AIOKafkaClient, node_id: Any, *args: Any, **kwargs: Any) -> Any:
        import asyncio

        key = (id(self), node_id)
        not_before, delay = backoff.get(key, (0.0, 0.0))
        wait = not_before - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        conn = await original(self, node_id, *args, **kwargs)
        if conn is None:
            delay = min(longest_s, max(first_s, delay * 2))
            backoff[key] = (time.monotonic() + delay * random.uniform(0.5, 1.0), delay)
        else:
            backoff.pop(key, None)
        return conn

    AIOKafkaClient._get_conn = _get_conn
    _patched = True
