"""The SQLite sink agent: writes every scored post (its text, image reference, thread and Score) to the embedded
database, where the labeler (and a dashboard) can query them.

Posts and scores come on two topics; the sink pairs them in memory by post id (bounded, oldest dropped first) and
writes a row only when it has both, so the table holds complete rows and its size bound counts only those. A post's
offset is committed while it waits for its score, so a restarted sink first reads back the newest posts (the last
day's, PENDING at most) before it takes scores: a post in flight at the restart still gets its row.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, cast

import faust
import orjson

from bizstream.errors import InvalidRecord
from bizstream.records import Post
from bizstream.settings import Settings
from bizstream.store.labels import LabelStore
from bizstream.store.scored import ScoredPostStore
from bizstream.stream import topics
from bizstream.stream.apps import new_app, read_back, status_line
from bizstream.stream.client import Message

APP_ID = "bizstream-sink"
PENDING = 50_000  # posts (or scores) waiting for their other half
RECENT_S = 86_400.0  # how far back a restarted sink reads posts whose scores may still come


class Pairing:
    """Posts and scores waiting for each other; each side bounded, oldest dropped first."""

    def __init__(self, limit: int = PENDING) -> None:
        self.limit = limit
        self.posts: OrderedDict[str, Post] = OrderedDict()
        self.scores: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def add_post(self, post: Post) -> tuple[Post, dict[str, Any]] | None:
        """The complete pair if this post's score already came; else keep the post."""
        score = self.scores.pop(post.id, None)
        if score is not None:
            return post, score
        self._keep(self.posts, post.id, post)
        return None

    def add_score(self, score: dict[str, Any]) -> tuple[Post, dict[str, Any]] | None:
        """The complete pair if this score's post already came; else keep the score."""
        post = self.posts.pop(str(score["post_id"]), None)
        if post is not None:
            return post, score
        self._keep(self.scores, str(score["post_id"]), score)
        return None

    def _keep(self, side: OrderedDict[str, Any], key: str, value: Any) -> None:
        side[key] = value
        while len(side) > self.limit:
            side.popitem(last=False)


def create_sink_app(settings: Settings) -> faust.App:
    """The sink's faust app: posts and scores in, complete rows out."""
    app, declared = new_app(settings, APP_ID)
    store = ScoredPostStore(LabelStore(settings.store_path))
    pairing = Pairing()
    keep = settings.store.keep_scored_posts
    stored = [0]

    def write(pairs: list[tuple[Post, dict[str, Any]]]) -> None:
        if pairs:
            store.add_posts([p for p, _ in pairs])
            store.add_scores([s for _, s in pairs])
            store.retain(keep)
            stored[0] += len(pairs)

    recent: dict[str, Post] = {}  # the posts the pairing would hold had this process run all along, and more

    def remember_post(message: Message) -> None:
        post = Post.from_json(message.value, settings.limits)
        recent.pop(post.id, None)
        recent[post.id] = post

    def waiting() -> str:
        done = store.scored(recent)
        for post in recent.values():
            if post.id not in done:  # still waiting for its score
                pairing.add_post(post)
        said = f"{len(recent)} recent posts read back, {len(recent) - len(done)} of them still waiting for their score"
        recent.clear()
        return said

    ready = read_back(app, settings, topics.POSTS, RECENT_S, PENDING, remember_post, waiting,
                      "posts in flight at this start may get no row")  # fmt: skip

    status_line(app, lambda: (f"{stored[0]} scored posts stored in {settings.store_path} ({len(pairing.posts)} posts and "
                              f"{len(pairing.scores)} scores waiting for their other half)") if stored[0] else None)  # fmt: skip

    @app.agent(declared[topics.POSTS], name="bizstream.sink.posts")
    async def posts(stream: faust.StreamT[bytes]) -> None:
        """Posts (bad ones are the worker's to dead-letter; here they are skipped)."""
        await ready.wait()
        async for values in cast(faust.Stream[bytes], stream).take(500, within=1.0):
            pairs = []
            for raw in values:
                try:
                    pair = pairing.add_post(Post.from_json(raw, settings.limits))
                except InvalidRecord:
                    continue
                if pair is not None:
                    pairs.append(pair)
            write(pairs)

    @app.agent(declared[topics.SCORES], name="bizstream.sink.scores")
    async def scores(stream: faust.StreamT[bytes]) -> None:
        """Scores."""
        await ready.wait()
        async for values in cast(faust.Stream[bytes], stream).take(500, within=1.0):
            pairs = []
            for raw in values:
                try:
                    score = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(score, dict) and isinstance(score.get("post_id"), str):  # anything else is not a Score
                    pair = pairing.add_score(score)
                    if pair is not None:
                        pairs.append(pair)
            write(pairs)

    return app
