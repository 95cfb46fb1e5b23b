"""Throughput of the VADER-only pipeline, in-process vs end-to-end through a real Kafka, in one run; and latency.

    .venv/bin/python bench/throughput.py [--posts 20000] [--rounds 3] [--rate 1000] [--seconds 20] [--warm-up 10]
        [--variants worker,...]

Prints one JSON object:
- in_process: validate + score + serialize, the worker's per-batch work with no Kafka (posts/s), measured before the
  first round and after each (a round's ratios divide by the mean of the two around it);
- end_to_end: the same backlog on a 4-partition topic, consumed by each variant as a consumer group of its own, from
  its first score to its last (posts/s, start-up excluded; read_committed; duplicates counted):
  - worker: `bizstream worker` (plain aiokafka, batched and pipelined);
  - worker_exactly_once: the same with worker.processing_guarantee = "exactly_once" (a transaction per batch);
  - worker_x2: two `bizstream worker` processes in one group (2 shared cores: no gain is expected);
  - worker_batch_256: the worker with batches of at most 256 posts (the default before: what batch size buys);
  - faust_take_events: the worker as it was before (bench/faust_worker.py), for the choice of client;
  - confluent_kafka: a plain librdkafka loop doing the same work (bench/confluent_worker.py), for the same choice;
- ratios to in_process and to `worker`: the median over --rounds rounds, each round running every variant once (the
  machine is shared, and one run of a variant moves by ±10%);
- latency: produce → score consumed, at a fixed rate after the backlog (p50 ... p99.9 and the maximum, in ms), once
  the broker has been warmed up at that rate for --warm-up seconds (that phase's p50 / p99 are reported beside).
Everything comes from the same posts on the same machine in the same run, so compare the ratios, not the absolute
numbers across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from local import broker_settings, running, worker  # noqa: E402

from bizstream.plugins import load_pipeline  # noqa: E402
from bizstream.scoring import Message, score_messages  # noqa: E402
from bizstream.settings import Settings  # noqa: E402
from bizstream.stream import topics  # noqa: E402
from bizstream.stream.client import publish  # noqa: E402


def make_posts(n: int, prefix: str) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs built from the sample posts' texts, with unique ids."""
    lines = (ROOT / "data" / "sample_posts.jsonl").read_bytes().splitlines()
    texts = [text for line in lines if (text := orjson.loads(line)["text"]).strip()]  # image-only memes: not here
    out = []
    for i in range(n):
        thread = f"t{i % 257}"
        out.append((thread.encode(), orjson.dumps({"id": f"{prefix}{i}", "thread_id": thread, "text": texts[i % len(texts)]})))
    return out


def in_process(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    """The worker's per-batch work with no Kafka: the pipeline `bizstream worker` loads (analyzers, fusers, tickers),
    the batch runner it calls (validate, score, dead-letter) and serialization, batch by batch."""
    pipeline = load_pipeline(settings, third_party=False)
    gc.collect()
    gc.freeze()  # as the worker does once its plugins are loaded
    size = settings.worker.batch_size
    messages = [Message(value=value, key=key, topic=topics.POSTS, partition=0, offset=i) for i, (key, value) in enumerate(records)]
    started = time.perf_counter()
    for i in range(0, len(messages), size):
        handled = score_messages(pipeline, messages[i : i + size], settings.limits)
        for score in handled.scores:
            score.to_json()
    seconds = time.perf_counter() - started
    pipeline.close()
    return len(records) / seconds


async def scores_end(settings: Settings) -> dict[TopicPartition, int]:
    """Where the scores topic ends now: a variant's scores are those after it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(topics.SCORES, p) for p in range(settings.kafka.partitions)])
    finally:
        await consumer.stop()


async def end_to_end(settings: Settings, n: int, since: dict[TopicPartition, int]) -> dict[str, float]:
    """Wait for n distinct posts' scores after ``since`` (read_committed); throughput from the first score's
    scored_at to the last's (start-up excluded), and how many were scored more than once."""
    stamps: dict[str, float] = {}
    records = 0
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None, isolation_level="read_committed")
    await consumer.start()
    consumer.assign(list(since))
    for tp, offset in since.items():
        consumer.seek(tp, offset)
    try:
        while len(stamps) < n:
            batch = await consumer.getmany(timeout_ms=1000)
            for rs in batch.values():
                for r in rs:
                    score = orjson.loads(r.value)
                    stamps.setdefault(score["post_id"], score["scored_at"])
                    records += 1
    finally:
        await consumer.stop()
    return {"posts_per_s": (n - 1) / (max(stamps.values()) - min(stamps.values())), "duplicates": records - n}


async def latency(settings: Settings, rate: float, seconds: float, warm_up_s: float) -> dict[str, Any]:
    """Produce → score consumed at ``rate`` for ``warm_up_s`` and then ``seconds``; the percentiles are of the
    second part. A broker that has just started is slow for its first seconds (its JIT compiles the paths small
    requests take: p99 ~120 ms in the first 5 s on a fresh broker, ~40-60 ms after), and a deployed broker has long
    been warm, so the warm-up's own p50 / p99 are reported beside, not mixed in."""
    warm = int(rate * warm_up_s)
    records = make_posts(warm + int(rate * seconds), "lat-")
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

    # The clock starts once the worker is up and caught up: a warm-up post has come back scored.
    await (await producer.send(topics.POSTS, value=orjson.dumps({"id": "warm-up", "thread_id": "w", "text": "gm"}), key=b"w"))
    deadline = time.monotonic() + 180
    while not any(orjson.loads(r.value)["post_id"] == "warm-up" for rs in (await consumer.getmany(timeout_ms=500)).values() for r in rs):
        if time.monotonic() > deadline:
            raise SystemExit("the latency worker never scored its warm-up post")
    receiver = asyncio.create_task(receive())
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
    if os.environ.get("BENCH_LATENCY_DUMP"):  # each post's send time and delay, to look at when the slow ones came
        Path(os.environ["BENCH_LATENCY_DUMP"]).write_bytes(orjson.dumps([[sent[k] - started, arrived[k] - sent[k]] for k in sent]))

    def percentiles(ids: range, qs: tuple[float, ...]) -> dict[str, float]:
        delays = sorted(1000 * (arrived[f"lat-{i}"] - sent[f"lat-{i}"]) for i in ids)
        return {f"p{q:g}_ms": round(delays[min(len(delays) - 1, int(len(delays) * q / 100))], 1) for q in qs}

    return {
        "rate_posts_per_s": rate, "n": len(records) - warm,
        **percentiles(range(warm, len(records)), (50, 90, 99, 99.9, 100)),
        "warm_up": {"seconds": warm_up_s, **percentiles(range(warm), (50, 99))} if warm else None,
    }  # fmt: skip


VARIANTS = {
    # name: (argv of the worker process, or None for `bizstream worker`; its environment; how many processes)
    "worker": (None, {}, 1),
    "worker_exactly_once": (None, {"BIZSTREAM_WORKER__PROCESSING_GUARANTEE": "exactly_once"}, 1),
    "worker_x2": (None, {}, 2),
    "worker_batch_256": (None, {"BIZSTREAM_WORKER__BATCH_SIZE": "256"}, 1),
    "faust_take_events": ([sys.executable, str(ROOT / "bench" / "faust_worker.py")], {}, 1),
    "confluent_kafka": ([sys.executable, str(ROOT / "bench" / "confluent_worker.py")], {}, 1),
}


def run_variant(settings: Settings, work: Path, name: str, n: int, group: str) -> dict[str, float]:
    """One variant's end-to-end throughput on the whole backlog, as the consumer group ``group`` (a new one)."""
    argv, env, processes = VARIANTS[name]
    since = asyncio.run(scores_end(settings))
    env = {**env, "BIZSTREAM_WORKER__APP_ID": group, "BIZSTREAM_SETFIT__STARTER": "false"}
    with ExitStack() as stack:
        for i in range(processes):
            stack.enter_context(worker(settings, work, "worker", argv, f"{name}-{i}", **env))
        return asyncio.run(end_to_end(settings, n, since))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="latency: how long it is measured")
    parser.add_argument("--warm-up", type=float, default=10.0, help="latency: seconds at the rate before measuring")
    parser.add_argument("--rounds", type=int, default=3, help="every variant this many times, interleaved (medians)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    if args.posts < 20000:
        # The span measured starts at a variant's first score, so its first batch (up to 2048 posts for the worker,
        # everything fetched at once for faust's take) is left out: a small backlog flatters whoever batches most.
        print(f"bench/throughput.py: --posts {args.posts} is a smoke run; its posts/s and ratios mean nothing below "
              "20000", file=sys.stderr)  # fmt: skip

    broker, settings, work = broker_settings("bench")
    settings = settings.replace(setfit={"starter": False})  # VADER alone: no SetFit model serves here
    records = make_posts(args.posts, "p")
    names = args.variants.split(",")
    # The machine is shared and its speed drifts: in-process is measured before the first round and after each, every
    # variant runs once per round, and a round's ratios are to the mean of the in-process runs around it. Reported:
    # the median over rounds of each figure.
    rates_in = [in_process(settings, records)]
    rounds: list[dict[str, dict[str, float]]] = []
    with running(broker, settings):
        asyncio.run(publish(settings.kafka, topics.POSTS, records))
        for r in range(args.rounds):
            done = {name: run_variant(settings, work, name, args.posts, f"bench-{name}-{r}") for name in names}
            rates_in.append(in_process(settings, records))
            for result in done.values():
                result["ratio_to_in_process"] = result["posts_per_s"] / statistics.mean(rates_in[-2:])
                if "worker" in done:
                    result["ratio_to_worker"] = result["posts_per_s"] / done["worker"]["posts_per_s"]
            rounds.append(done)
        # A group that has scored the backlog already, so this worker starts at its end.
        with worker(settings, work, log_name="latency", BIZSTREAM_SETFIT__STARTER="false", BIZSTREAM_WORKER__APP_ID="bench-worker-0"):
            lat = asyncio.run(latency(settings, args.rate, args.seconds, args.warm_up))

    def median(name: str, key: str) -> float:
        return round(statistics.median(done[name][key] for done in rounds), 3)

    print(orjson.dumps({
        "benchmark": "throughput",
        "pipeline": "vader only",
        "posts": args.posts,
        "rounds": args.rounds,
        "in_process_posts_per_s": [round(rate, 1) for rate in rates_in],
        "end_to_end": {name: {"posts_per_s": median(name, "posts_per_s"), "ratio_to_in_process": median(name, "ratio_to_in_process"),
                              "duplicates": sum(int(done[name]["duplicates"]) for done in rounds),
                              "ratio_to_in_process_per_round": [round(done[name]["ratio_to_in_process"], 3) for done in rounds]}
                       for name in names},
        "ratio_to_worker": {name: median(name, "ratio_to_worker") for name in names} if "worker" in names else None,
        "latency_bizstream_worker": lat,
        "settings": {"batch_size": settings.worker.batch_size, "batch_timeout_s": settings.worker.batch_timeout_s,
                     "partitions": settings.kafka.partitions},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
