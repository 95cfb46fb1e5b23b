"""Throughput of the VADER-only pipeline, in-process vs end-to-end through a real Kafka, in one run; and latency.

    .venv/bin/python bench/throughput.py [--posts 20000] [--rate 500] [--seconds 10]

Prints one JSON object:
- in_process: validate + score + serialize, the worker's per-batch work with no Kafka (posts/s);
- end_to_end: a backlog of posts on a 4-partition topic consumed by one `bizstream worker` process, from its first
  score to its last (posts/s, start-up excluded);
- ratio: end_to_end / in_process;
- latency: produce → score consumed, at a fixed rate after the backlog (p50 / p99 in ms).
Both throughputs come from the same posts on the same machine in the same run, so compare the ratio, not the
absolute numbers across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from local import broker_settings, running, worker  # noqa: E402

from bizstream.pipeline import Pipeline  # noqa: E402
from bizstream.plugins import get_plugin_manager, load_analyzers  # noqa: E402
from bizstream.records import Post  # noqa: E402
from bizstream.settings import Settings  # noqa: E402
from bizstream.stream import topics  # noqa: E402
from bizstream.stream.client import publish  # noqa: E402


def make_posts(n: int, prefix: str) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs built from the sample posts' texts, with unique ids."""
    texts = [orjson.loads(line)["text"] for line in (ROOT / "data" / "sample_posts.jsonl").read_bytes().splitlines()]
    out = []
    for i in range(n):
        thread = f"t{i % 257}"
        out.append((thread.encode(), orjson.dumps({"id": f"{prefix}{i}", "thread_id": thread, "text": texts[i % len(texts)]})))
    return out


def in_process(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    statuses = load_analyzers(get_plugin_manager(settings, third_party=False), settings)
    pipeline = Pipeline([s.analyzer for s in statuses if s.analyzer], settings.fusion, settings.worker.analyzer_timeout_s)
    size = settings.worker.batch_size
    started = time.perf_counter()
    for i in range(0, len(records), size):
        posts = [Post.from_json(value, settings.limits) for _, value in records[i : i + size]]
        for score in pipeline.process(posts).scores:
            score.to_json()
    seconds = time.perf_counter() - started
    pipeline.close()
    return len(records) / seconds


async def end_to_end(settings: Settings, n: int) -> float:
    """Wait for n scores from the backlog; throughput from the first score's scored_at to the last's."""
    stamps = []
    consumer = AIOKafkaConsumer(topics.SCORES, bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while len(stamps) < n:
            batch = await consumer.getmany(timeout_ms=1000)
            stamps += [orjson.loads(r.value)["scored_at"] for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return (n - 1) / (max(stamps) - min(stamps))


async def latency(settings: Settings, rate: float, seconds: float) -> dict[str, float]:
    records = make_posts(int(rate * seconds), "lat-")
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    consumer = AIOKafkaConsumer(topics.SCORES, bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, auto_offset_reset="latest")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    await consumer.start()
    await producer.start()

    async def receive() -> None:
        while len(arrived) < len(records):
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for rs in batch.values():
                for r in rs:
                    post_id = orjson.loads(r.value)["post_id"]
                    if post_id.startswith("lat-"):
                        arrived.setdefault(post_id, now)

    receiver = asyncio.create_task(receive())
    await asyncio.sleep(2)  # let the consumer get its partitions before we start the clock
    started = time.time()
    for i, (key, value) in enumerate(records):
        delay = started + i / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[f"lat-{i}"] = time.time()
        await producer.send(topics.POSTS, value=value, key=key)
    await producer.flush()
    await asyncio.wait_for(receiver, timeout=60)
    await producer.stop()
    await consumer.stop()
    delays = sorted(1000 * (arrived[k] - sent[k]) for k in sent)
    return {
        "rate_posts_per_s": rate,
        "n": len(delays),
        "p50_ms": delays[len(delays) // 2],
        "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    broker, settings, work = broker_settings("bench")
    settings = settings.replace(setfit={"starter": False})  # VADER alone: no SetFit model serves here
    records = make_posts(args.posts, "p")
    rate_in = in_process(settings, records)
    with running(broker, settings), worker(settings, work, BIZSTREAM_SETFIT__STARTER="false"):
        asyncio.run(publish(settings.kafka, topics.POSTS, records))
        rate_e2e = asyncio.run(end_to_end(settings, args.posts))
        lat = asyncio.run(latency(settings, args.rate, args.seconds))

    print(orjson.dumps({
        "benchmark": "throughput",
        "pipeline": "vader only",
        "posts": args.posts,
        "in_process_posts_per_s": round(rate_in, 1),
        "end_to_end_posts_per_s": round(rate_e2e, 1),
        "ratio_end_to_end_over_in_process": round(rate_e2e / rate_in, 3),
        "latency": {k: round(v, 1) for k, v in lat.items()},
        "settings": {"batch_size": settings.worker.batch_size, "batch_timeout_s": settings.worker.batch_timeout_s,
                     "partitions": settings.kafka.partitions, "workers": 1},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
