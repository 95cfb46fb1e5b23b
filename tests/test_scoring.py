"""The batch runner the worker and `bizstream score` share: every message accounted for by its own position."""

from __future__ import annotations

import orjson

from bizstream.pipeline import Pipeline
from bizstream.scoring import Message, score_messages
from bizstream.settings import FusionSettings, LimitSettings
from tests.fixtures.analyzers import ConstantAnalyzer, RaisingAnalyzer, prediction


def messages(*values: bytes) -> list[Message]:
    return [Message(v, b"k%d" % i, "posts", 0, 100 + i) for i, v in enumerate(values)]


class PicksOnImages(ConstantAnalyzer):
    """Scores text posts; has nothing to say about image-only ones (so they go unscored)."""

    def analyze(self, posts):  # type: ignore[no-untyped-def]
        return [prediction(self.value) if p.text.strip() else None for p in posts]


def test_each_message_is_scored_or_dead_lettered_with_its_own_bytes_and_offset() -> None:
    image_only = orjson.dumps({"id": "same", "text": "", "image": {"url": "https://example.com/a.png"}})
    batch = messages(
        b'{"id": "same", "text": "moon"}',  # scorable
        image_only,  # the same post id again, not scorable: its own bytes must be kept, not the first one's
        b"not json",
        b'{"id": "other", "text": "rekt"}',
    )
    pipeline = Pipeline([PicksOnImages("text", 0.5)], FusionSettings(), timeout_s=5)
    handled = score_messages(pipeline, batch, LimitSettings())
    assert [s.post_id for s in handled.scores] == ["same", "other"]
    dead = {letter.offset: (message, letter) for message, letter in handled.dead_letters}
    assert sorted(dead) == [101, 102]
    assert dead[101][1].raw_bytes() == image_only and dead[101][1].stage == "analyze"
    assert dead[101][1].error_type == "Unscored" and "an image-only post, and none of them reads images" in dead[101][1].message
    assert dead[102][1].raw_bytes() == b"not json" and dead[102][1].stage == "validate"
    assert dead[102][1].key is not None and dead[102][0].key == b"k2"


def test_when_every_analyzer_fails_every_post_is_dead_lettered_with_the_reason() -> None:
    pipeline = Pipeline([RaisingAnalyzer("raiser", 1.0)], FusionSettings(), timeout_s=5)
    handled = score_messages(pipeline, messages(b'{"id": "a", "text": "x"}', b'{"id": "b", "text": "y"}'), LimitSettings())
    assert handled.scores == []
    assert [(m.offset, "RuntimeError: boom" in d.message) for m, d in handled.dead_letters] == [(100, True), (101, True)]
