"""The tickers agent's throughput beside the worker's, in one run on one local broker (2 shared cores: read the ratio).

Phase 1: N posts, each naming one of 100 tickers, through a worker: the worker's posts/s (first post produced to
last Score on the broker). Phase 2: the worker stopped, N more Scores produced straight to the scores topic: the
tickers agent's posts/s (first Score produced to the last one counted in the published 1-minute windows). Prints
JSON with both and tickers/worker: above 1, the tickers agent is not the bottleneck.

    .venv/bin/python bench/tickers_agent.py [--posts 5000] [--setfit]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from local import broker_settings, running, worker  # noqa: E402

from bizstream.settings import Settings  # noqa: E402
from bizstream.stream import topics  # noqa: E402
from bizstream.stream.client import publish, read  # noqa: E402

TICKERS = [f"T{i:02d}X" for i in range(100)]
T0 = 1_800_000_000.0


async def timed(
    settings: Settings, records: list[tuple[bytes, bytes]], topic: str, out: str, done: Callable[[bytes], bool]
) -> float:  # fmt: skip
    """Seconds from producing ``records`` to ``topic`` until a record of ``out``, read as it arrives, makes ``done``
    true (a follower started before the first record is produced, so no poll interval is measured)."""

    async def follow() -> float:
        async for m in read(settings.kafka, out, None, 900.0):
            if done(m.value):
                return time.monotonic()
        raise TimeoutError("the agents did not finish")

    follower = asyncio.create_task(follow())
    await asyncio.sleep(2)  # the follower has read what the topic held and waits for more
    started = time.monotonic()
    await publish(settings.kafka, topic, records)
    return await follower - started


def counter(n: int, since: float) -> Callable[[bytes], bool]:
    """True once the latest 1-minute windows since ``since`` add up to ``n`` posts."""
    latest: dict[tuple[str, float], int] = {}
    total = 0

    def done(value: bytes) -> bool:
        nonlocal total
        w = orjson.loads(value)
        if w["kind"] == "tumbling" and w["window_s"] == 60 and w["start"] >= since:
            key = (w["ticker"], w["start"])
            total += int(w["posts"]) - latest.get(key, 0)
            latest[key] = int(w["posts"])
        return total >= n

    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--setfit", action="store_true", help="The default worker (VADER + the SetFit starter), not VADER alone.")
    args = parser.parse_args()
    n = args.posts
    broker, settings, work = broker_settings("tickers-bench")
    env = {} if args.setfit else {"BIZSTREAM_SETFIT__STARTER": "false"}  # VADER alone: the hardest test for the agent
    with running(broker, settings), worker(settings, work, "tickers", **env):
        posts = [(f"t{i}".encode(), orjson.dumps({"id": f"p{i}", "thread_id": f"t{i}", "text": f"${TICKERS[i % 100]} to the moon",
                                                  "created_at": T0 + i * 0.01})) for i in range(n)]  # fmt: skip
        with worker(settings, work, "worker", **env):
            time.sleep(40 if args.setfit else 15)  # both agents up and assigned (the starter installs on first use)
            seen = [0]

            def scored(value: bytes) -> bool:
                seen[0] += 1
                return seen[0] >= n

            worker_seconds = asyncio.run(timed(settings, posts, topics.POSTS, topics.SCORES, scored))
        worker_rate = n / worker_seconds

        base = T0 + 86_400  # phase 2's windows: a day later, apart from phase 1's
        scores = [(b"t", orjson.dumps({"post_id": f"q{i}", "thread_id": "t", "score": 0.5, "label": "bullish", "confidence": 0.8,
                                       "probabilities": {}, "analyzers": {}, "scored_at": base, "posted_at": base + i * 0.01,
                                       "tickers": [TICKERS[i % 100]]})) for i in range(n)]  # fmt: skip
        tickers_seconds = asyncio.run(timed(settings, scores, topics.SCORES, topics.TICKERS, counter(n, base)))
        tickers_rate = n / tickers_seconds
    print(json.dumps({"posts": n, "worker": "vader + setfit" if args.setfit else "vader", "worker_posts_per_s": round(worker_rate, 1), "tickers_posts_per_s": round(tickers_rate, 1),
                      "tickers_over_worker": round(tickers_rate / worker_rate, 2)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
