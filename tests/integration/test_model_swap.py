"""A running worker swaps to a newly promoted SetFit model between batches: nothing dropped, nothing failed."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.stream import topics
from bizstream_plugins.setfit.training import refit_head
from tests.integration.conftest import Cluster, post_bytes, scores_by_id

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_worker_swaps_to_a_promoted_model_without_dropping_posts(
    cluster: Cluster, trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path
) -> None:
    registry, first, split = trained
    registry.promote(first.version)
    second = refit_head(registry, split, parent=first.version)
    cluster.start_worker(
        BIZSTREAM_SETFIT__REGISTRY=str(registry.root), BIZSTREAM_SETFIT__RUNTIME="torch", BIZSTREAM_WORKER__BATCH_SIZE="50"
    )
    cluster.produce(topics.POSTS, (post_bytes(i) for i in range(300)))
    cluster.wait_for(topics.SCORES, lambda m: len(scores_by_id(m)) >= 300, timeout_s=180)

    registry.promote(second.version)  # while the worker runs
    try:
        cluster.produce(topics.POSTS, (post_bytes(i) for i in range(300, 900)))
        want = {f"p{i}" for i in range(900)}
        messages = cluster.wait_for(
            topics.SCORES,
            lambda m: want <= set(scores_by_id(m)) and second.version in versions(m),
            timeout_s=180,
        )
    finally:
        registry.promote(first.version)  # leave the shared fixture as it was
    scores = scores_by_id(messages)
    assert want <= set(scores)
    for s in scores.values():
        assert s["analyzers"]["setfit"]["error"] is None  # every post got its SetFit result, across the swap
    before = [scores[f"p{i}"]["analyzers"]["setfit"]["model_version"] for i in range(300)]
    assert set(before) == {first.version}
    assert versions(messages) == {first.version, second.version}


def versions(messages: list) -> set[str]:  # type: ignore[type-arg]
    return {orjson.loads(m.value)["analyzers"]["setfit"]["model_version"] for m in messages}
