"""The SQLite sink agent: writes every scored post (its text, image reference, thread and Score) to the embedded
database, where the labeler (and a dashboard) can query them. Posts and scores are joined by post id in the table."""

from __future__ import annotations

from typing import Any, cast

import faust
import orjson

from bizstream.errors import InvalidRecord
from bizstream.records import Post
from bizstream.settings import Settings
from bizstream.store.labels import LabelStore
from bizstream.store.scored import ScoredPostStore
from bizstream.stream import topics
from bizstream.stream.apps import new_app

APP_ID = "bizstream-sink"


def create_sink_app(settings: Settings) -> faust.App:
    """The sink's faust app: posts and scores in, rows out."""
    app, declared = new_app(settings, APP_ID)
    store = ScoredPostStore(LabelStore(settings.store_path))
    keep = settings.store.keep_scored_posts

    @app.agent(declared[topics.POSTS], name="bizstream.sink.posts")
    async def posts(stream: faust.StreamT[bytes]) -> None:
        """Post fields (bad posts are the worker's to dead-letter; here they are skipped)."""
        async for values in cast(faust.Stream[bytes], stream).take(500, within=1.0):
            good = []
            for raw in values:
                try:
                    good.append(Post.from_json(raw, settings.limits))
                except InvalidRecord:
                    continue
            store.add_posts(good)

    @app.agent(declared[topics.SCORES], name="bizstream.sink.scores")
    async def scores(stream: faust.StreamT[bytes]) -> None:
        """Score fields; then keep the table to its size."""
        async for values in cast(faust.Stream[bytes], stream).take(500, within=1.0):
            decoded: list[dict[str, Any]] = []
            for raw in values:
                try:
                    decoded.append(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    continue
            store.add_scores(s for s in decoded if isinstance(s, dict) and "post_id" in s)
            store.retain(keep)

    return app
