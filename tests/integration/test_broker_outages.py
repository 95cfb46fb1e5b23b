"""The broker is not always there: an agent started before it waits and then works; one that never sees it says so
in one line; an outage is said once, its end once, without flooding the log (issue 12, items 3 and 5)."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson
import pytest

from bizstream.stream import topics
from bizstream.stream.broker import free_port
from tests.conftest import ROOT
from tests.integration.conftest import Cluster, post_bytes, scores_by_id

pytestmark = pytest.mark.integration


def test_a_worker_started_before_its_broker_waits_for_it(cluster: Cluster) -> None:
    cluster.broker.stop()
    worker = cluster.start_worker(BIZSTREAM_KAFKA__CONNECT_TIMEOUT_S="120")
    log_file = cluster.workdir / "worker-0.log"
    deadline = time.monotonic() + 60
    while "waiting up to 120 s for Kafka" not in log_file.read_text() and time.monotonic() < deadline:
        assert worker.poll() is None, log_file.read_text()[-2000:]
        time.sleep(0.5)
    time.sleep(3)
    assert worker.poll() is None  # still waiting, not crashed
    cluster.broker.start()
    cluster.produce(topics.POSTS, [post_bytes(i) for i in range(20)])
    scores = cluster.wait_for(topics.SCORES, lambda m: len(scores_by_id(m)) >= 20, timeout_s=90)
    assert len(scores_by_id(scores)) == 20
    log = log_file.read_text()
    assert log.count("waiting up to 120 s for Kafka") == 1 and "Traceback" not in log
    assert "Kafka at 127.0.0.1" in log and "is up after" in log


def test_a_worker_that_never_sees_a_broker_says_so_in_one_line(cluster: Cluster) -> None:
    env = cluster.env(BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}", BIZSTREAM_KAFKA__CONNECT_TIMEOUT_S="2")
    result = subprocess.run([sys.executable, "-m", "bizstream", "worker"], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=120)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach Kafka at 127.0.0.1:") and "kafka.connect_timeout_s" in last
    bad_port = cluster.env(BIZSTREAM_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:99999")
    result = subprocess.run([sys.executable, "-m", "bizstream", "worker"], capture_output=True, text=True, env=bad_port,
                            cwd=ROOT, timeout=120)  # fmt: skip
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "error: kafka.bootstrap_servers must be host:port[,host:port...] with ports 1..65535, got '127.0.0.1:99999'"
    ]


def test_an_outage_is_said_once_and_its_end_once(cluster: Cluster) -> None:
    cluster.start_worker()
    cluster.produce(topics.POSTS, [post_bytes(i) for i in range(10)])
    cluster.wait_for(topics.SCORES, lambda m: len(scores_by_id(m)) >= 10, timeout_s=90)
    log_file = next(cluster.workdir.glob("worker-*.log"))
    before = len(log_file.read_bytes())
    cluster.broker.stop()
    time.sleep(15)
    during = log_file.read_bytes()[before:].decode(errors="replace")
    cluster.broker.start()
    cluster.produce(topics.POSTS, [post_bytes(i) for i in range(10, 20)])
    scores = cluster.wait_for(topics.SCORES, lambda m: len(scores_by_id(m)) >= 20, timeout_s=120)
    assert len(scores_by_id(scores)) == 20  # it recovered by itself, nothing lost
    assert len(during.splitlines()) < 40, f"{len(during.splitlines())} lines in 15 s of outage:\n{during[-3000:]}"
    # The end of an outage is noticed by the worker's once-a-second check, which may come after it has scored again.
    deadline = time.monotonic() + 10
    while "Kafka reachable again after" not in (after := log_file.read_bytes()[before:].decode(errors="replace")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # a second announcement, were there one, would come within the next check
    after = log_file.read_bytes()[before:].decode(errors="replace")
    assert after.count("Kafka unreachable") == 1 and after.count("Kafka reachable again after") == 1, after[-3000:]
    health = [orjson.loads(p.read_bytes()) for p in (cluster.workdir / "cache" / "health").glob("bizstream-worker@*.json")]
    assert len(health) == 1 and health[0]["kafka"] == "up" and health[0]["outages"] == 1 and health[0]["last_outage_s"] >= 10
