"""The worker's processing guarantees on a real broker (issue 15): SIGKILLed at random moments, a consumer-group
member joining and leaving mid-stream, and a lone post on an idle worker."""

from __future__ import annotations

import collections
import random
import time

import orjson
import pytest

from bizstream.stream import topics
from tests.integration.conftest import Cluster, post_bytes, scores_by_id

pytestmark = pytest.mark.integration
N = 10_000


def scored_so_far(cluster: Cluster) -> int:
    """Records on the scores topic (committed or not): progress, not a count of posts."""
    return sum(end for _, end in cluster.offsets(None, [topics.SCORES])[topics.SCORES].values())


@pytest.mark.slow
@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_a_worker_killed_five_times_loses_nothing(cluster: Cluster, guarantee: str) -> None:
    env = {"BIZSTREAM_WORKER__PROCESSING_GUARANTEE": guarantee, "BIZSTREAM_WORKER__BATCH_SIZE": "10"}
    rng = random.Random(15)
    worker = cluster.start_worker(**env)
    mid_stream = 0
    for round_ in range(5):  # a fifth of the posts, then a SIGKILL at a random moment while they are scored
        cluster.produce(topics.POSTS, (post_bytes(i, thread=f"t{i % 101}") for i in range(round_ * N // 5, (round_ + 1) * N // 5)))
        mark = scored_so_far(cluster)
        deadline = time.monotonic() + 120
        while scored_so_far(cluster) < mark + 100:
            assert time.monotonic() < deadline and worker.poll() is None, f"no progress; see {cluster.workdir}"
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 0.3))
        worker.kill()
        worker.wait()
        mid_stream += scored_so_far(cluster) < (round_ + 1) * N // 5  # posts of this round were left unscored
        worker = cluster.start_worker(**env)
    assert mid_stream >= 4, f"only {mid_stream} of 5 kills came while posts were waiting: the test tested little"
    want = {f"p{i}" for i in range(N)}
    messages = cluster.wait_for(topics.SCORES, lambda m: want <= set(scores_by_id(m)), timeout_s=240)
    messages = cluster.read(topics.SCORES, timeout_s=5)  # read_committed
    seen = collections.Counter(orjson.loads(m.value)["post_id"] for m in messages)
    assert not want - set(seen), f"{len(want - set(seen))} posts never scored"
    duplicates = sum(n - 1 for n in seen.values())
    print(f"{guarantee}: {N} posts, {mid_stream} of 5 kills mid-stream, {duplicates} duplicates seen by a read_committed reader")
    if guarantee == "exactly_once":
        assert duplicates == 0 and len(messages) == N
        assert "exactly-once as bizstream-worker-" in (cluster.workdir / "worker-5.log").read_text()
    else:
        assert len(messages) >= N


@pytest.mark.slow
def test_a_member_joining_and_leaving_mid_stream_loses_nothing(cluster: Cluster) -> None:
    env = {"BIZSTREAM_WORKER__BATCH_SIZE": "25"}
    first = cluster.start_worker(**env)
    cluster.produce(topics.POSTS, (post_bytes(i, thread=f"t{i % 101}") for i in range(3000)))
    cluster.wait_for(topics.SCORES, lambda m: len(m) >= 200, timeout_s=90)
    second = cluster.start_worker(**env)  # joins: the first gives up half its partitions mid-batch
    cluster.produce(topics.POSTS, (post_bytes(i, thread=f"t{i % 101}") for i in range(3000, 6000)))
    deadline = time.monotonic() + 90
    while "partitions assigned: bizstream" not in (cluster.workdir / "worker-1.log").read_text():
        assert time.monotonic() < deadline and second.poll() is None, f"the second worker never got partitions; see {cluster.workdir}"
        time.sleep(0.5)
    second.terminate()  # leaves: its partitions go back to the first, mid-stream
    assert second.wait(timeout=60) == 0
    cluster.workers.remove(second)
    cluster.produce(topics.POSTS, (post_bytes(i, thread=f"t{i % 101}") for i in range(6000, 7000)))
    want = {f"p{i}" for i in range(7000)}
    messages = cluster.wait_for(topics.SCORES, lambda m: want <= set(scores_by_id(m)), timeout_s=180)
    assert not want - set(scores_by_id(messages)), "posts lost across the rebalances"
    assert first.poll() is None
    said = (cluster.workdir / "worker-0.log").read_text()
    assert said.count("partitions revoked") >= 2, said[-3000:]  # the join and the leave both took partitions away


def test_a_lone_post_is_scored_at_once_not_after_the_batch_timeout(cluster: Cluster) -> None:
    cluster.start_worker(BIZSTREAM_WORKER__BATCH_TIMEOUT_S="5", BIZSTREAM_WORKER__BATCH_SIZE="256")
    cluster.produce(topics.POSTS, [post_bytes(0)])
    cluster.wait_for(topics.SCORES, lambda m: len(m) >= 1, timeout_s=90)  # started, assigned, idle
    time.sleep(2)
    sent = time.time()
    cluster.produce(topics.POSTS, [post_bytes(1)])
    messages = cluster.wait_for(topics.SCORES, lambda m: "p1" in scores_by_id(m), timeout_s=30)
    waited = float(scores_by_id(messages)["p1"]["scored_at"]) - sent  # type: ignore[arg-type]
    assert waited < 1.0, f"a lone post waited {waited:.2f} s with batch_timeout_s=5"
