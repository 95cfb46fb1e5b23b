"""Prometheus metrics and the health of a long-running process: ``/metrics``, ``/healthz``, ``/readyz``.

Every agent (worker, sink, monitor, trainer, tickers) and the dashboard serve these on ``metrics.host`` (127.0.0.1)
and ``metrics.port`` (0: a free port, printed at start and written to the process's health file).

- ``/healthz`` is 503 when the process has input waiting (consumer lag > 0) and has handled nothing for
  ``metrics.stall_s`` seconds — a consumer that silently stopped, faust's most-reported failure — or when its
  broker has been unreachable that long.
- ``/readyz`` is 503 until the process has partitions assigned (and, for the worker, its analyzers loaded).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from bizstream.errors import ConfigError

CONSUMED = Counter("bizstream_messages_consumed_total", "Messages read from a topic", ["app", "topic"])
SCORED = Counter("bizstream_posts_scored_total", "Posts scored (a Score produced)")
DEAD = Counter("bizstream_dead_letters_total", "Messages dead-lettered", ["app", "stage"])
LATENCY = Histogram("bizstream_analyzer_seconds_per_post", "Analyzer time per post (its chunk's time shared out)", ["analyzer"],
                    buckets=(0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0))  # fmt: skip
ANALYZER_ERRORS = Counter("bizstream_analyzer_errors_total", "Posts an analyzer produced no result for", ["analyzer"])
BATCH = Histogram("bizstream_batch_size", "Posts per worker batch", buckets=(1, 4, 16, 64, 128, 256, 512, 1024))
LAG = Gauge("bizstream_consumer_lag", "Messages not yet read on the partitions this process holds", ["app"])
SERVING = Gauge("bizstream_serving_model", "1 for the model version each analyzer serves", ["analyzer", "version"])
DRIFT = Counter("bizstream_drift_events_total", "Drift events published", ["analyzer"])
JOBS = Counter("bizstream_training_jobs_total", "Training jobs started", ["reason"])
DECISIONS = Counter("bizstream_model_decisions_total", "Model decisions seen on the models topic", ["analyzer", "promoted"])
LAST_PROGRESS = Gauge("bizstream_last_progress_timestamp_seconds", "When this process last handled a message", ["app"])


@dataclass
class Health:
    """What /healthz and /readyz answer from, kept current by the process (once a second for the agents)."""

    app: str
    stall_s: float
    lag: int = 0
    assigned: int = 0
    ready_check: Callable[[], bool] = lambda: True
    broker_down_since: float | None = None
    last_progress: float = field(default_factory=time.time)
    _progress_mark: float = -1.0

    def progressed(self, mark: float) -> None:
        """Record a progress counter's value (e.g. events handled); a change is progress."""
        if mark != self._progress_mark:
            self._progress_mark = mark
            self.last_progress = time.time()
            LAST_PROGRESS.labels(self.app).set(self.last_progress)

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, why)."""
        now = time.time()
        idle = now - self.last_progress
        stalled = self.lag > 0 and idle > self.stall_s
        down = self.broker_down_since is not None and now - self.broker_down_since > self.stall_s
        why = {"app": self.app, "lag": self.lag, "seconds_since_progress": round(idle, 1), "stalled": stalled,
               "broker_unreachable_s": round(now - self.broker_down_since, 1) if self.broker_down_since else 0}  # fmt: skip
        return not (stalled or down), why

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """(ready, why)."""
        loaded = self.ready_check()
        return self.assigned > 0 and loaded, {"app": self.app, "partitions": self.assigned, "loaded": loaded}


def add_routes(app: web.Application, health: Health) -> None:
    """/metrics, /healthz and /readyz on an aiohttp application."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        ok, why = health.healthy()
        return web.json_response(why, status=200 if ok else 503)

    async def readyz(request: web.Request) -> web.Response:
        ok, why = health.ready()
        return web.json_response(why, status=200 if ok else 503)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


def bind(host: str, port: int, what: str) -> socket.socket:
    """A listening socket on host:port (0: a free port), bound before anything else starts, so that a port already
    taken is one line at once that says which setting chose it, not a traceback from inside a running agent."""
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"cannot listen on {host}:{port} for {what}: {reason}; another process has it "
                          f"(one still running?): stop it, or choose another port") from None


async def serve(health: Health, sock: socket.socket) -> tuple[web.AppRunner, int]:
    """Serve /metrics, /healthz and /readyz on ``sock`` (from :func:`bind`); the runner (clean it up at exit) and the
    port it listens on."""
    app = web.Application()
    add_routes(app, health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner, await listen(runner, sock)


async def listen(runner: web.AppRunner, sock: socket.socket) -> int:
    """Serve ``runner`` on ``sock`` (from :func:`bind`); the port it listens on."""
    await web.SockSite(runner, sock).start()
    return int(sock.getsockname()[1])
