"""Hostile input at length: a worker on a local broker against a seeded stream of valid posts, every malformed kind
(bizstream.fuzzing) and posts sharing an id. Reports, as JSON, how many messages were scored and dead-lettered, and
anything not accounted for exactly (lost, twice, wrong bytes, wrong offset) — expected: none.

    .venv/bin/python bench/fuzz.py [--valid 2000] [--malformed 10000] [--seed 0]

tests/integration/test_fuzz.py runs a shorter stream of the same kinds in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bizstream.fuzzing import OVERSIZE_BYTES, account, chunks, hostile_stream, text_scorable  # noqa: E402
from bizstream.settings import BrokerSettings, LimitSettings, Settings  # noqa: E402
from bizstream.stream import topics  # noqa: E402
from bizstream.stream.broker import LocalBroker, free_port  # noqa: E402
from bizstream.stream.client import ensure_topics, publish, read  # noqa: E402


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
    work = Path(tempfile.mkdtemp(prefix="bizstream-fuzz-"))
    broker = LocalBroker(BrokerSettings(port=free_port(), controller_port=free_port()), name=f"fuzz-{os.getpid()}")
    settings = Settings().replace(kafka={"bootstrap_servers": broker.bootstrap_servers, "partitions": 4}, broker={"cache_dir": str(work)})
    broker.start()
    worker = None
    try:
        asyncio.run(ensure_topics(settings.kafka))
        env = {**os.environ, "BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers, "BIZSTREAM_BROKER__CACHE_DIR": str(work),
               "BIZSTREAM_LIMITS__MAX_MESSAGE_BYTES": str(limits.max_message_bytes), "BIZSTREAM_SETFIT__STARTER": "false"}  # fmt: skip
        with (work / "worker.log").open("wb") as log:
            worker = subprocess.Popen([sys.executable, "-m", "bizstream", "worker"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
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
            if len(scores) + len(letters) >= len(produced) or time.monotonic() > deadline or worker.poll() is not None:
                break
        seconds = time.perf_counter() - started
        alive = worker.poll() is None
        report = account(produced, [v for _, _, v in scores], [v for _, _, v in letters], scorable)
        reasons = Counter(orjson.loads(v)["message"].split(" (")[0][:70] for _, _, v in letters)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        broker.delete()
    print(orjson.dumps({
        "benchmark": "fuzz", "seed": args.seed, "valid_posts": args.valid, "malformed": args.malformed,
        "kinds": dict(Counter(stream.kinds)), **report.as_dict(), "worker_alive_at_end": alive,
        "seconds": round(seconds, 1), "top_dead_letter_reasons": dict(reasons.most_common(15)),
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
