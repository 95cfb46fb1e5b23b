"""A plain confluent-kafka (librdkafka) loop doing the worker's very work, kept so bench/throughput.py can show the
choice of client side by side in one run: consume up to worker.batch_size posts, score them with the same pipeline
and batch runner, produce each Score (murmur2 partitioning, as Kafka's Java client and aiokafka), wait for delivery,
commit the batch's offsets. Not pipelined: librdkafka already sends from its own threads while Python scores.

    .venv/bin/python bench/confluent_worker.py     (settings from the environment, as for `bizstream worker`)
"""

from __future__ import annotations

import gc
import signal
import sys
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bizstream.plugins import load_pipeline  # noqa: E402
from bizstream.scoring import Message, score_messages  # noqa: E402
from bizstream.settings import load_settings  # noqa: E402
from bizstream.stream import topics  # noqa: E402


def main() -> None:
    settings = load_settings(None)
    pipeline = load_pipeline(settings)
    gc.collect()
    gc.freeze()  # as the worker does once the plugins are loaded
    servers = settings.kafka.bootstrap_servers
    consumer = Consumer({"bootstrap.servers": servers, "group.id": settings.worker.app_id, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})  # fmt: skip
    producer = Producer({"bootstrap.servers": servers, "acks": "all", "linger.ms": settings.worker.producer_linger_ms,
                         "partitioner": "murmur2_random", "batch.size": 1024 * 1024})  # fmt: skip
    consumer.subscribe([topics.POSTS])
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    while running[0]:
        records = [r for r in consumer.consume(settings.worker.batch_size, timeout=settings.worker.batch_timeout_s) if r.error() is None]
        if not records:
            continue
        messages = [Message(r.value() or b"", r.key(), r.topic(), r.partition(), r.offset()) for r in records]
        handled = score_messages(pipeline, messages, settings.limits)
        for score in handled.scores:
            producer.produce(topics.SCORES, score.to_json(), key=score.thread_id.encode())
            producer.poll(0)
        producer.flush()
        last: dict[tuple[str, int], int] = {}
        for r in records:
            last[(r.topic(), r.partition())] = r.offset() + 1
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in last.items()], asynchronous=False)
    consumer.close()


if __name__ == "__main__":
    main()
