"""Dashboard API latency with 100 tickers and 100,000 scored posts taken in (no Kafka: the state is fed directly, the
API served by the real aiohttp app on 127.0.0.1). Prints JSON: how fast the state takes scores and windows, and
p50 / p99 latency of each endpoint over 300 requests.

    .venv/bin/python bench/dashboard.py
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bizstream.dashboard.server import STATE, create_app  # noqa: E402
from bizstream.settings import Settings  # noqa: E402
from bizstream.stream import topics  # noqa: E402
from bizstream.stream.broker import free_port  # noqa: E402

TICKERS = [f"T{i:03d}" for i in range(100)]
POSTS = 100_000


def feed(app: object) -> dict[str, float]:
    state = app[STATE]  # type: ignore[index]
    rnd = random.Random(0)
    scores = [orjson.dumps({"post_id": f"p{i}", "thread_id": "t", "label": "bullish", "score": 0.5, "confidence": 0.8,
                            "tickers": [rnd.choice(TICKERS)], "scored_at": time.time()}) for i in range(POSTS)]  # fmt: skip
    started = time.perf_counter()
    for raw in scores:
        state.take(topics.SCORES, raw)
    score_s = time.perf_counter() - started
    windows = []
    for t in TICKERS:
        for minute in range(120):
            for kind, size in (("tumbling", 60), ("tumbling", 3600), ("rolling", 86400)):
                windows.append(orjson.dumps({"ticker": t, "kind": kind, "window_s": size, "start": 1_800_000_000 + minute * 60,
                                             "end": 1_800_000_060 + minute * 60, "posts": rnd.randint(1, 50), "mean_score": 0.1,
                                             "weighted_score": 0.1, "shares": {"bearish": 0.2, "neutral": 0.3, "bullish": 0.5},
                                             "mean_sarcasm": None, "most_bullish": "p1", "most_bearish": "p2", "baseline": 3.0,
                                             "spike": False}))  # fmt: skip
    started = time.perf_counter()
    for raw in windows:
        state.take(topics.TICKERS, raw)
    window_s = time.perf_counter() - started
    return {"scores_per_s": round(POSTS / score_s), "windows_per_s": round(len(windows) / window_s), "windows": len(windows)}


async def measure(port: int) -> dict[str, dict[str, float]]:
    out = {}
    async with aiohttp.ClientSession() as session:
        for path in ("/api/tickers", "/api/tickers?window=tumbling/60", "/api/tickers/T042", "/api/posts", "/api/stats"):
            times = []
            for _ in range(300):
                started = time.perf_counter()
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    await response.read()
                    assert response.status == 200, (path, response.status)
                times.append(1000 * (time.perf_counter() - started))
            times.sort()
            out[path] = {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(times[int(0.99 * len(times)) - 1], 2)}
    return out


async def main() -> None:
    settings = Settings().replace(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"})  # no broker: the state is fed here
    app = create_app(settings)
    ingest = feed(app)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        latency = await measure(port)
    finally:
        await runner.cleanup()
    print(json.dumps({"tickers": len(TICKERS), "scored_posts": POSTS, "ingest": ingest, "latency": latency}, indent=2))


if __name__ == "__main__":
    import logging

    logging.disable(logging.WARNING)  # the dashboard's retries against the absent broker (none, by design)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # and aiokafka's "Unable connect" errors
    asyncio.run(main())
