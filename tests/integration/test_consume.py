"""`bizstream consume` for people (issue 13, item 6): the history, then stop when the topic goes quiet; or a tail
that shows only new messages and waits for them however long none comes."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson
import pytest

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
