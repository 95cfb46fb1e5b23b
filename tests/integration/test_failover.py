"""Two workers in one consumer group share the posts; one is SIGKILLed mid-stream; no post is lost."""

from __future__ import annotations

import asyncio
import struct
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bizstream.stream import topics
from tests.integration.conftest import Cluster, post_bytes, scores_by_id

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _posts_partitions(assignment: bytes) -> list[int]:
    """Partitions of the posts topic in a consumer-protocol member assignment (version, [topic, [partition]])."""
    (topic_count,) = struct.unpack_from(">i", assignment, 2)
    at, found = 6, []
    for _ in range(topic_count):
        (length,) = struct.unpack_from(">h", assignment, at)
        name = assignment[at + 2 : at + 2 + length].decode()
        (count,) = struct.unpack_from(">i", assignment, at + 2 + length)
        partitions = list(struct.unpack_from(f">{count}i", assignment, at + 6 + length))
        at += 6 + length + 4 * count
        if name == topics.POSTS:
            found += partitions
    return found


def sharing_members(cluster: Cluster, group: str) -> int:
    """How many members of a stable group hold at least one partition of the posts topic."""

    async def describe() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.settings.kafka.bootstrap_servers)
        await admin.start()
        try:
            (described,) = await admin.describe_consumer_groups([group])
        except KafkaError:  # the group coordinator is not there yet
            return 0
        finally:
            await admin.close()
        stable = [g for g in described.groups if g[2] == "Stable"]
        return sum(1 for g in stable for member in g[-1] if _posts_partitions(member[-1]))

    return asyncio.run(describe())


def test_sigkilled_worker_loses_no_post(cluster: Cluster) -> None:
    env = {"BIZSTREAM_WORKER__BATCH_SIZE": "20", "BIZSTREAM_WORKER__APP_ID": "failover"}
    first = cluster.start_worker(**env)
    cluster.start_worker(**env)
    deadline = time.monotonic() + 90
    while sharing_members(cluster, "failover") < 2:
        assert time.monotonic() < deadline, "the two workers never shared the posts partitions"
        time.sleep(1)

    # Posts spread over many threads, so every partition (and so both workers) gets some.
    n_before, n_after = 3000, 2000
    cluster.produce(topics.POSTS, (post_bytes(i, thread=f"t{i % 101}") for i in range(n_before)))
    cluster.wait_for(topics.SCORES, lambda m: len(m) >= 300, timeout_s=60)
    first.kill()  # SIGKILL: no goodbye, no commit, mid-stream
    first.wait()
    cluster.produce(topics.POSTS, (post_bytes(i, thread=f"t{i % 101}") for i in range(n_before, n_before + n_after)))

    want = {f"p{i}" for i in range(n_before + n_after)}
    messages = cluster.wait_for(topics.SCORES, lambda m: want <= set(scores_by_id(m)), timeout_s=180)
    missing = want - set(scores_by_id(messages))
    assert not missing, f"{len(missing)} posts never scored, e.g. {sorted(missing)[:5]}"
    # At-least-once: a post may be scored twice across the failover, never zero times.
    assert len(messages) >= len(want)
