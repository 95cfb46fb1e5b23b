"""`bizstream consume` for people (issue 13, item 6): the history, then stop when the topic goes quiet; or a tail
that shows only new messages and waits for them however long none comes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from bizstream.stream import topics
from tests.conftest import ROOT
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration


def consume(cluster: Cluster, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bizstream", "consume", "labels", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env(), cwd=ROOT)


def ids(out: bytes) -> list[str]:
    return sorted(orjson.loads(line)["post_id"] for line in out.splitlines())  # partitions interleave


def label(post_id: str) -> tuple[bytes, bytes]:
    return post_id.encode(), orjson.dumps({"post_id": post_id, "rating": 3, "labeler": "t", "text": "moon"})


def test_consume_stops_when_the_topic_goes_quiet_and_tails_with_follow(cluster: Cluster) -> None:
    cluster.produce(topics.LABELS, [label("old-1"), label("old-2")])
    started = time.monotonic()
    history = consume(cluster, "--idle", "2")
    out, err = history.communicate(timeout=60)
    assert history.returncode == 0 and ids(out) == ["old-1", "old-2"], err
    assert b"2 messages from bizstream.labels.v1" in err
    assert time.monotonic() - started < 30  # the idle limit ended it, not a total time

    tail = consume(cluster, "--follow", "--from-end", "--idle", "1", "--count", "2")
    time.sleep(6)  # far past --idle: --follow keeps waiting
    assert tail.poll() is None
    cluster.produce(topics.LABELS, [label("new-1"), label("new-2")])
    out, err = tail.communicate(timeout=60)
    assert tail.returncode == 0 and ids(out) == ["new-1", "new-2"], err  # not the history


def test_a_mistyped_full_topic_name_is_refused_not_created(cluster: Cluster) -> None:
    # The local broker creates a topic the first time a client names it: `produce --topic bizstream.lables.v1`
    # published to a new, empty topic nobody reads, and `consume` of a typo created one too.
    typo = "bizstream.lables.v1"
    for command in (["consume", typo, "--idle", "1"], ["produce", "-", "--topic", typo]):
        done = subprocess.run([sys.executable, "-m", "bizstream", *command], input=b'{"id": "p", "text": "moon"}\n',
                              capture_output=True, env=cluster.env(), cwd=ROOT, timeout=60)  # fmt: skip
        assert done.returncode == 1 and f"no topic '{typo}' on".encode() in done.stderr, done.stderr

    async def names() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.settings.kafka.bootstrap_servers)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    assert typo not in asyncio.run(names()) and topics.LABELS in asyncio.run(names())
