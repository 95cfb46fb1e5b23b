"""The scoring worker: a faust app whose agent batches posts, scores them off the event loop, and produces Scores.

At-least-once: ``stream.take_events`` acknowledges a batch's events only when the loop body for that batch has
returned, and the body returns only after the broker has confirmed every Score and dead letter it produced; faust
commits acknowledged offsets. A worker killed mid-batch therefore leaves those posts uncommitted, and whoever takes
over their partitions scores them again (a post may be scored twice, never lost).

Bad input never stops the agent: the raw bytes go to the dead-letter topic with the reason, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import faust

from bizstream.errors import InvalidRecord
from bizstream.pipeline import BatchResult, Pipeline
from bizstream.records import Post
from bizstream.settings import Settings
from bizstream.stream import topics
from bizstream.stream.apps import new_app, send_dead_letter

log = logging.getLogger(__name__)
EXIT_PRODUCE_FAILED = 75  # EX_TEMPFAIL: try again


def create_app(settings: Settings, pipeline: Pipeline) -> faust.App:
    """A faust app with bizstream's topics and the scoring agent, bound to one pipeline."""
    app, declared = new_app(settings, settings.worker.app_id)
    scorer = _Scorer(settings, pipeline, declared[topics.SCORES], declared[topics.DEADLETTER])

    @app.agent(declared[topics.POSTS], name="bizstream.score")
    async def score(stream: faust.StreamT[bytes]) -> None:
        """Score posts in batches bounded by worker.batch_size and worker.batch_timeout_s."""
        batches = cast(faust.Stream[bytes], stream).take_events(  # take_events is on Stream, not on StreamT
            settings.worker.batch_size, within=settings.worker.batch_timeout_s
        )
        async for events in batches:
            await scorer.handle(events)

    return app


class _Scorer:
    """The agent's body, kept out of the decorator so it reads top to bottom."""

    def __init__(self, settings: Settings, pipeline: Pipeline, scores: faust.TopicT, deadletter: faust.TopicT) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.scores = scores
        self.deadletter = deadletter
        # One thread: the pipeline fans out to its analyzers' own threads; this one only keeps the loop free.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="pipeline")

    async def handle(self, events: Sequence[faust.EventT[bytes]]) -> None:
        """Validate, score and produce one batch; return only when the broker has everything it produced."""
        posts: list[Post] = []
        origin: dict[str, faust.EventT[bytes]] = {}
        pending: list[Awaitable[Any]] = []
        for event in events:
            raw = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
            try:
                post = Post.from_json(raw, self.settings.limits)
            except InvalidRecord as exc:
                pending.append(await send_dead_letter(self.deadletter, event, "validate", exc))
                continue
            posts.append(post)
            origin.setdefault(post.id, event)
        if posts:
            loop = asyncio.get_running_loop()
            try:
                result: BatchResult = await loop.run_in_executor(self.executor, self.pipeline.score, posts)
            except Exception as exc:  # boundary: the pipeline should never raise, but if it does, keep every post
                log.exception("pipeline failed on a batch of %d posts", len(posts))
                for post in posts:
                    pending.append(await send_dead_letter(self.deadletter, origin[post.id], "analyze", exc))
            else:
                for score in result.scores:
                    pending.append(
                        await self.scores.send(key=score.thread_id.encode(), value=score.to_json(), force=True)
                    )
                for miss in result.unscored:
                    error = RuntimeError(miss.reason)
                    pending.append(await send_dead_letter(self.deadletter, origin[miss.post.id], "analyze", error))
        # Offsets of this batch are acknowledged when we return: wait for the broker to have every record first.
        try:
            await asyncio.gather(*pending)
        except Exception:
            # The producer has already retried for its whole delivery timeout. Acking now would lose posts, and a
            # restarted agent would not see this batch again, so leave the group: whoever takes these partitions
            # (this worker, restarted by its supervisor, or another) re-reads them from the last committed offset.
            log.critical("could not produce the results of a batch; exiting so the batch is re-read", exc_info=True)
            logging.shutdown()
            os._exit(EXIT_PRODUCE_FAILED)
