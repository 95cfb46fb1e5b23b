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


def test_an_offset_lookup_retried_after_a_leadership_change_is_debug_other_errors_still_show(caplog: pytest.LogCaptureFixture) -> None:
    from aiokafka.errors import NotLeaderForPartitionError, UnknownError

    fetcher = logging.getLogger("aiokafka.consumer.fetcher")
    caplog.set_level(logging.INFO, logger="aiokafka.consumer.fetcher")
    fetcher.error("Failed fetch offsets from %s: %s", 1, NotLeaderForPartitionError())  # a new topic's first moments
    fetcher.error("Failed fetch offsets from %s: %s", 1, UnknownError())
    assert [r.levelname for r in caplog.records] == ["ERROR"] and "UnknownError" in caplog.records[0].getMessage()
