"""``bizstream dashboard``: a read-only web page and JSON API over bizstream's topics, updated live.

aiohttp (already here through faust) serves:

- ``/``: the page (``static/index.html`` + ``static/app.js``; charts by plotly.js, served from the plotly package on
  PyPI, so nothing comes from a CDN);
- ``/api/tickers?window=rolling|tumbling/60|tumbling/3600``: the leaderboard; ``/api/tickers/{ticker}``: one ticker's
  latest windows and 1-minute history; ``/api/posts``: the latest scored posts; ``/api/drift``, ``/api/models``:
  drift events and model decisions; ``/api/stats``: scores per second, the workers' lag, and the version of each
  analyzer (and of the fusion) that scored the latest post;
- ``/api/events``: server-sent events (``ticker``, ``post``, ``drift``, ``model``, ``stats``) — the page's live feed.

One aiokafka consumer without a group follows the topics: tickers, drift and models from their start, posts and scores
from their last ``dashboard.recent_posts`` messages per partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bizstream import metrics
from bizstream.dashboard.state import DashboardState
from bizstream.settings import Settings
from bizstream.stream import topics
from bizstream.stream.signing import trusted

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
FOLLOWED = (topics.TICKERS, topics.POSTS, topics.SCORES, topics.DRIFT, topics.MODELS)
RECENT_ONLY = (topics.POSTS, topics.SCORES)
WORKERS_GROUP_POLL_S = 5.0
LEADERBOARD_MAX = 500  # tickers in one /api/tickers answer
STATE: web.AppKey[DashboardState] = web.AppKey("state", DashboardState)
CLIENTS: web.AppKey[set[asyncio.Queue[bytes]]] = web.AppKey("clients", set)


def plotly_js() -> Path:
    """plotly.min.js from the plotly package (a registry package: nothing is fetched at run time)."""
    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


def create_app(settings: Settings) -> web.Application:
    """The dashboard's aiohttp application (it starts following the topics when it starts)."""
    app = web.Application()
    clients: set[asyncio.Queue[bytes]] = set()

    def publish(kind: str, data: Any) -> None:
        message = b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        for queue in clients:
            if queue.qsize() < 1000:  # a client that stopped reading loses updates, not the server's memory
                queue.put_nowait(message)

    state = DashboardState(settings.dashboard, publish)
    app[STATE] = state
    health = metrics.Health("dashboard", settings.metrics.stall_s, ready_check=lambda: state.following)
    metrics.add_routes(app, health)  # on the dashboard's own port
    app[CLIENTS] = clients
    app.router.add_get("/", _index)
    app.router.add_get("/static/plotly.min.js", _plotly)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/tickers", _tickers)
    app.router.add_get("/api/tickers/{ticker}", _ticker)
    app.router.add_get("/api/posts", lambda request: _json(list(request.app[STATE].posts)))
    app.router.add_get("/api/drift", lambda request: _json(list(request.app[STATE].drift)))
    app.router.add_get("/api/models", lambda request: _json(list(request.app[STATE].models)))
    app.router.add_get("/api/stats", lambda request: _json(request.app[STATE].stats()))
    app.router.add_get("/api/events", _events)

    async def follow(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_consume(settings, state, health)), asyncio.create_task(_watch_lag(settings, state, publish))]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    app.cleanup_ctx.append(follow)
    return app


async def serve(settings: Settings, port: int, say: Callable[[str], None] = print) -> None:
    """Serve until cancelled (Ctrl-C); says the URL once it is listening (``port`` 0: a free one)."""
    sock = metrics.bind(settings.dashboard.host, port, "the dashboard (dashboard.port, --port)")
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        bound = await metrics.listen(runner, sock)
        say(f"dashboard on http://{settings.dashboard.host}:{bound} (Ctrl-C stops)")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _json(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


async def _plotly(request: web.Request) -> web.FileResponse:
    return web.FileResponse(plotly_js())


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _tickers(request: web.Request) -> web.Response:
    return await _json(request.app[STATE].leaderboard(*leaderboard_query(request.query)))


def leaderboard_query(query: Mapping[str, str]) -> tuple[str, int]:
    """``window`` and ``limit`` of ``/api/tickers``; a bad one is a 400 that says what is accepted, not an empty
    list that looks like a quiet market."""
    window = query.get("window", "rolling")
    if window != "rolling" and not re.fullmatch(r"tumbling/[1-9][0-9]{0,8}", window):
        raise web.HTTPBadRequest(text=f"window must be rolling or tumbling/<seconds> (e.g. tumbling/60), got {window[:100]!r}")
    given = query.get("limit", "50")
    if not re.fullmatch(r"[0-9]{1,9}", given) or not 1 <= int(given) <= LEADERBOARD_MAX:
        raise web.HTTPBadRequest(text=f"limit must be a whole number from 1 to {LEADERBOARD_MAX}, got {given[:100]!r}")
    return window, int(given)


async def _ticker(request: web.Request) -> web.Response:
    found = request.app[STATE].ticker(request.match_info["ticker"])
    if found is None:
        raise web.HTTPNotFound(text=f"no windows for {request.match_info['ticker'][:100]!r} yet")
    return await _json(found)


async def _events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    request.app[CLIENTS].add(queue)
    try:
        await response.write(b"event: stats\ndata: " + orjson.dumps(request.app[STATE].stats()) + b"\n\n")
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), timeout=15)
            except asyncio.TimeoutError:
                message = b": keep-alive\n\n"
            await response.write(message)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        request.app[CLIENTS].discard(queue)
    return response


async def _consume(settings: Settings, state: DashboardState, health: metrics.Health) -> None:
    """Follow the topics for as long as the dashboard runs; reconnect after an error."""
    key = settings.kafka.models_key
    while True:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, isolation_level="read_committed",
                                    enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
        try:
            await consumer.start()
            parts = await _partitions(settings, FOLLOWED)
            consumer.assign(parts)
            health.assigned = len(parts)
            ends = await consumer.end_offsets(parts)
            starts = await consumer.beginning_offsets(parts)
            for tp in parts:
                if tp.topic in RECENT_ONLY:
                    consumer.seek(tp, max(ends[tp] - settings.dashboard.recent_posts, starts[tp]))
                else:
                    consumer.seek(tp, starts[tp])
            state.following = True
            handled = 0
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, records in batch.items():
                    for record in records:
                        if record.value is None or (tp.topic == topics.MODELS and not trusted(key, record.value, record.headers)):
                            continue  # a decision not signed with kafka.models_key is shown nowhere, as it serves nowhere
                        state.take(tp.topic, record.value)
                    handled += len(records)
                health.progressed(handled)
                highwaters = [consumer.highwater(tp) for tp in parts]
                positions = [await consumer.position(tp) for tp in parts]
                health.lag = sum(max((h or 0) - p, 0) for h, p in zip(highwaters, positions, strict=True))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # boundary: the page stays up and says it is stale; try again
            state.following = False
            log.warning("dashboard: following the topics failed (%s: %s); retrying in 5 s", type(exc).__name__, exc)
            await asyncio.sleep(5)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()


async def _partitions(settings: Settings, names: tuple[str, ...]) -> list[TopicPartition]:
    """Every partition of these topics (those that exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(list(names))
    finally:
        await admin.close()
    return [TopicPartition(d["topic"], p["partition"]) for d in described if not d.get("error_code") for p in sorted(d["partitions"], key=lambda p: p["partition"])]


async def _watch_lag(settings: Settings, state: DashboardState, publish: Any) -> None:
    """Every few seconds: how many posts the workers' consumer group has not yet committed, per partition."""
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, isolation_level="read_committed")
        try:
            await admin.start()
            await consumer.start()
            while True:
                committed = await admin.list_consumer_group_offsets(settings.worker.app_id)
                parts = await _partitions(settings, (topics.POSTS,))
                ends = await consumer.end_offsets(parts) if parts else {}
                state.lag = {str(tp.partition): max(ends[tp] - (committed[tp].offset if tp in committed else 0), 0) for tp in parts}
                publish("stats", state.stats())
                await asyncio.sleep(WORKERS_GROUP_POLL_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # boundary: lag is a nicety; the rest of the page goes on
            log.debug("dashboard: could not read the workers' lag: %s", exc)
            await asyncio.sleep(WORKERS_GROUP_POLL_S)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await admin.close()
