"""Hostile input at length: a worker on a local broker against a seeded stream of valid posts, every malformed kind
(bizstream.fuzzing) and posts sharing an id. Reports, as JSON, how many messages were scored and dead-lettered, and
anything not accounted for exactly (lost, twice, wrong bytes, wrong offset) — expected: none.

    .venv/bin/python bench/fuzz.py [--valid 2000] [--malformed 10000] [--seed 0]

tests/integration/test_fuzz.py runs a shorter stream of the same kinds in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from local import broker_settings, running, worker  # noqa: E402

from bizstream.fuzzing import OVERSIZE_BYTES, account, chunks, hostile_stream, text_scorable  # noqa: E402
from bizstream.settings import LimitSettings, Settings  # noqa: E402
from bizstream.stream import topics  # noqa: E402
from bizstream.stream.client import publish, read  # noqa: E402


async def everything(settings: Settings, topic: str, count: int, timeout_s: float) -> list[tuple[int, int, bytes]]:
    return [(m.partition, m.offset, m.value) async for m in read(settings.kafka, topic, count, timeout_s)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--valid", type=int, default=2000)
    parser.add_argument("--malformed", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limits = LimitSettings(max_message_bytes=OVERSIZE_BYTES // 2)
    stream = hostile_stream(args.valid, args.malformed, args.seed)
    broker, settings, work = broker_settings("fuzz")
    env = {"BIZSTREAM_LIMITS__MAX_MESSAGE_BYTES": str(limits.max_message_bytes), "BIZSTREAM_SETFIT__STARTER": "false"}
    with running(broker, settings), worker(settings, work, **env) as process:
        started = time.perf_counter()
        for part in chunks(stream.records, 1000):
            asyncio.run(publish(settings.kafka, topics.POSTS, part))
        produced = {(p, o): v for p, o, v in asyncio.run(everything(settings, topics.POSTS, len(stream.records), 120))}
        scorable = text_scorable(limits)
        should_score = sum(1 for raw in produced.values() if scorable(raw) is not None)
        deadline = time.monotonic() + 600
        while True:
            scores = asyncio.run(everything(settings, topics.SCORES, should_score, 5))
            letters = asyncio.run(everything(settings, topics.DEADLETTER, len(produced) - should_score, 5))
            if len(scores) + len(letters) >= len(produced) or time.monotonic() > deadline or process.poll() is not None:
                break
        seconds = time.perf_counter() - started
        alive = process.poll() is None
    report = account(produced, [v for _, _, v in scores], [v for _, _, v in letters], scorable)
    reasons = Counter(orjson.loads(v)["message"].split(" (")[0][:70] for _, _, v in letters)
    print(orjson.dumps({
        "benchmark": "fuzz", "seed": args.seed, "valid_posts": args.valid, "malformed": args.malformed,
        "kinds": dict(Counter(stream.kinds)), **report.as_dict(), "worker_alive_at_end": alive,
        "seconds": round(seconds, 1), "top_dead_letter_reasons": dict(reasons.most_common(15)),
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
