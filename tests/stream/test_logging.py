"""aiokafka's log lines that say nothing to act on are quiet at the default level."""

from __future__ import annotations

import logging

import pytest

import bizstream  # noqa: F401  (installs the filters)


def test_a_send_aiokafka_retries_by_itself_is_debug_not_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    sender = logging.getLogger("aiokafka.producer.sender")
    retried = "Got error produce response on topic-partition %s, retrying. Error: %s"
    caplog.set_level(logging.INFO, logger="aiokafka.producer.sender")
    sender.warning(retried, "TopicPartition(topic='bizstream.posts.v1', partition=1)", "NotLeaderForPartitionError")
    sender.warning("something else")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("WARNING", "something else")]
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="aiokafka.producer.sender")
    sender.warning(retried, "TopicPartition(topic='bizstream.posts.v1', partition=1)", "NotLeaderForPartitionError")
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
