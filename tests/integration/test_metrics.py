"""Metrics and health on the long-running processes (issue 14, item 4): /metrics parses as Prometheus text and its
counters move; /healthz turns unhealthy when a worker's consumer has input waiting and has stopped handling it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bizstream.stream import topics
from bizstream.stream.broker import free_port
from tests.integration.conftest import Cluster, post_bytes

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait(check: object, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("timed out")


def samples(text: str, name: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples if s.name == name)


def test_metrics_move_and_a_stalled_consumer_turns_unhealthy(cluster: Cluster) -> None:
    port = free_port()
    cluster.start_worker("worker", BIZSTREAM_METRICS__PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    wait(lambda: get(base + "/readyz")[0] == 200)
    cluster.produce(topics.POSTS, (post_bytes(i) for i in range(50)))
    wait(lambda: samples(get(base + "/metrics")[1], "bizstream_posts_scored_total") >= 50)
    text = get(base + "/metrics")[1]
    assert samples(text, "bizstream_analyzer_seconds_per_post_count") >= 50  # vader's latency histogram
    assert samples(text, "bizstream_batch_size_count") >= 1 and "bizstream_serving_model" in text
    assert get(base + "/healthz")[0] == 200

    # A second worker (its own group) whose analyzer hangs: posts wait, nothing is handled -> unhealthy.
    stuck = free_port()
    cluster.start_worker("worker", BIZSTREAM_METRICS__PORT=str(stuck), BIZSTREAM_WORKER__APP_ID="stuck-workers",
                         BIZSTREAM_PLUGINS__LOAD='["tests.fixtures.analyzers"]', BIZSTREAM_WORKER__ANALYZER_TIMEOUT_S="300",
                         BIZSTREAM_WORKER__BATCH_SIZE="10", BIZSTREAM_METRICS__STALL_S="3")  # fmt: skip
    stalled = f"http://127.0.0.1:{stuck}"
    wait(lambda: get(stalled + "/readyz")[0] == 200)
    wait(lambda: get(stalled + "/healthz")[0] == 503, timeout_s=60)
    status, body = get(stalled + "/healthz")
    assert status == 503 and json.loads(body)["stalled"] is True and json.loads(body)["lag"] > 0
