"""Raw messages in, Scores and dead letters out: the one batch runner behind the worker and ``bizstream score``.

Every message is accounted for by its own position: it is validated into a Post and scored, or it becomes a dead
letter carrying its exact bytes, where it came from, the stage and the reason. Nothing here knows about Kafka or
faust; the worker feeds it consumed records, ``bizstream score`` the lines of a file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bizstream.errors import InvalidRecord
from bizstream.pipeline import Pipeline
from bizstream.records import DeadLetter, Post, Score
from bizstream.settings import LimitSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One message as it arrived: its exact bytes and where it came from (a topic partition and offset, or a file and
    line number)."""

    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int

    def dead_letter(self, stage: Literal["validate", "analyze"], error_type: str, reason: str) -> DeadLetter:
        """This message as a dead letter, with why it went there."""
        return DeadLetter.for_bytes(self.value, key=self.key, topic=self.topic, partition=self.partition,
                                    offset=self.offset, stage=stage, error_type=error_type, message=reason)  # fmt: skip


@dataclass(frozen=True)
class Handled:
    """What became of a batch: a Score per scored post (in input order) and a dead letter per other message."""

    scores: list[Score] = field(default_factory=list)
    dead_letters: list[tuple[Message, DeadLetter]] = field(default_factory=list)


def score_messages(pipeline: Pipeline, messages: Sequence[Message], limits: LimitSettings) -> Handled:
    """Validate, score and account for every message of a batch. Never raises because of a message or an analyzer."""
    handled = Handled()
    posts: list[Post] = []
    origins: list[Message] = []
    for message in messages:
        try:
            posts.append(Post.from_json(message.value, limits))
        except InvalidRecord as exc:
            handled.dead_letters.append((message, message.dead_letter("validate", type(exc).__name__, str(exc))))
            continue
        origins.append(message)
    if not posts:
        return handled
    try:
        result = pipeline.process(posts)
    except Exception as exc:  # boundary: the pipeline should never raise, but if it does, keep every post
        log.exception("pipeline failed on a batch of %d posts", len(posts))
        handled.dead_letters.extend((m, m.dead_letter("analyze", type(exc).__name__, str(exc))) for m in origins)
        return handled
    handled.scores.extend(result.scores)
    # By identity, not by post id: a scraper may send the same id twice, and each message keeps its own bytes.
    origin_of = {id(post): message for post, message in zip(posts, origins, strict=True)}
    for miss in result.unscored:
        message = origin_of[id(miss.post)]
        handled.dead_letters.append((message, message.dead_letter("analyze", "Unscored", miss.reason)))
    return handled


class BatchSizer:
    """How many posts the next batch may take: up to ``ceiling``, and no more than the pipeline scores in about
    ``target_s``, from a moving average of its seconds per post (so a transformer on the CPU is not handed thousands
    of posts, which its time budget would cut short). The first batch is small, until there is a measurement."""

    FIRST = 32
    SMOOTHING = 0.3

    def __init__(self, ceiling: int, target_s: float) -> None:
        self.ceiling = ceiling
        self.target_s = target_s
        self.per_post_s: float | None = None
        self.size = min(ceiling, self.FIRST)

    def observe(self, posts: int, seconds: float) -> None:
        """A batch of ``posts`` took ``seconds`` to score."""
        if posts <= 0:
            return
        now = seconds / posts
        self.per_post_s = now if self.per_post_s is None else self.per_post_s + self.SMOOTHING * (now - self.per_post_s)
        self.size = max(1, min(self.ceiling, int(self.target_s / max(self.per_post_s, 1e-9))))
