"""The labeling session behind `bizstream label`: which post is next, what each key does, and getting labels out.

Every label is written to training_labels at once (so Ctrl-C never loses one) and queued in an outbox in the same
database; the outbox is sent to bizstream.labels.v1 right away when the broker answers, and otherwise later (at the
next label after a pause, at quit, at the next session's start). Keys: 1 bearish, 2 neutral, 3 bullish, s skip,
u undo, q quit. Undo takes back the last label or skip: a label still in the outbox never leaves it; one already sent
is retracted on the topic (a Label with ``retracted``: the trainer forgets it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import orjson

from bizstream.errors import BizstreamError
from bizstream.records import Label, Sentiment
from bizstream.settings import Settings
from bizstream.store.database import transaction
from bizstream.store.labels import LabelRow, LabelStore
from bizstream.store.scored import PostForLabeling, ScoredPostStore
from bizstream.stream import topics

log = logging.getLogger(__name__)
RATINGS = {"1": 1, "2": 2, "3": 3}
KEYS = "1 bearish · 2 neutral · 3 bullish · s skip · u undo · q quit"
RETRY_AFTER_S = 10.0


@dataclass
class LabelSession:
    """One person's labeling session over a queue of posts."""

    settings: Settings
    labeler: str
    queue: list[PostForLabeling]
    labels: LabelStore = field(init=False)
    posts: ScoredPostStore = field(init=False)
    done: list[tuple[str, PostForLabeling]] = field(default_factory=list)  # ("label" | "skip", post), for undo
    labelled: int = 0
    skipped: int = 0
    sent: int = 0  # labels that reached the topic
    retracted: int = 0  # retractions that reached the topic
    offline_since: float | None = None

    def __post_init__(self) -> None:
        self.labels = LabelStore(self.settings.store_path)
        self.posts = ScoredPostStore(self.labels)
        self.total = len(self.queue)

    @property
    def current(self) -> PostForLabeling | None:
        """The post on screen."""
        return self.queue[0] if self.queue else None

    def parent(self, post: PostForLabeling) -> PostForLabeling | None:
        """The post this one replies to, when it is stored (thread context)."""
        return self.posts.get(post.reply_to) if post.reply_to else None

    def press(self, key: str) -> str:
        """Act on one key; what happened, in words (the labeler shows it as the next post comes up)."""
        post = self.current
        if post is None:
            return "nothing left to label"
        if key in RATINGS:
            self._label(post, RATINGS[key])
            return f"labelled {post.post_id} {sentiment_name(RATINGS[key])}"
        if key == "s":
            self.posts.skip(post.post_id, self.labeler)
            self.done.append(("skip", self.queue.pop(0)))
            self.skipped += 1
            return f"skipped {post.post_id}"
        if key == "u":
            return self._undo()
        if key == "q":
            return "quit"
        return f"{key!r} is not a key here: {KEYS}"

    def pending(self) -> int:
        """Labels waiting in the outbox."""
        (n,) = self.labels.db.execute("SELECT COUNT(*) FROM label_outbox").fetchone()
        return int(n)

    def flush(self, force: bool = False) -> int:
        """Send the outbox; returns how many went. A broker that is down costs one short try, then a pause."""
        if not force and self.offline_since is not None and time.monotonic() - self.offline_since < RETRY_AFTER_S:
            return 0
        rows = self.labels.db.execute("SELECT id, post_id, payload FROM label_outbox ORDER BY id").fetchall()
        if not rows:
            return 0
        retractions = sum(1 for _, _, payload in rows if orjson.loads(payload).get("retracted"))
        from bizstream.stream.client import publish

        try:
            asyncio.run(asyncio.wait_for(publish(self.settings.kafka, topics.LABELS,
                                                 [(str(p).encode(), bytes(v)) for _, p, v in rows]), timeout=10))  # fmt: skip
        except (BizstreamError, OSError, asyncio.TimeoutError, Exception) as exc:  # boundary: keep them, try later
            log.info("labels kept for later, the broker did not take them: %s", exc)
            self.offline_since = time.monotonic()
            return 0
        with transaction(self.labels.db):
            self.labels.db.executemany("DELETE FROM label_outbox WHERE id = ?", [(i,) for i, _, _ in rows])
        self.offline_since = None
        self.sent += len(rows) - retractions
        self.retracted += retractions
        return len(rows)

    def _label(self, post: PostForLabeling, rating: int) -> None:
        label = Label(post.post_id, rating, self.labeler, text=post.text)
        row = LabelRow(post.post_id, post.text, rating, self.labeler, post.thread_id, "human", label.labeled_at)
        with transaction(self.labels.db):  # the label and its outbox entry together, or neither
            self.labels.write([row])
            self.labels.db.execute("INSERT INTO label_outbox (post_id, payload) VALUES (?, ?)", (post.post_id, label.to_json()))
        self.done.append(("label", self.queue.pop(0)))
        self.labelled += 1
        self.flush()

    def _undo(self) -> str:
        if not self.done:
            return "nothing to undo"
        action, post = self.done.pop()
        self.queue.insert(0, post)
        if action == "skip":
            self.posts.unskip(post.post_id, self.labeler)
            self.skipped -= 1
            return f"undone: the skip of {post.post_id}"
        row = self.labels.db.execute("SELECT rating FROM training_labels WHERE post_id = ? AND labeler = ?",
                                     (post.post_id, self.labeler)).fetchone()  # fmt: skip
        with transaction(self.labels.db):
            self.labels.db.execute("DELETE FROM training_labels WHERE post_id = ? AND labeler = ?", (post.post_id, self.labeler))
            unsent = self.labels.db.execute("DELETE FROM label_outbox WHERE post_id = ?", (post.post_id,)).rowcount
            if not unsent and row is not None:  # it is on the topic already: take it back there too
                retraction = Label(post.post_id, int(row[0]), self.labeler, retracted=True)
                self.labels.db.execute("INSERT INTO label_outbox (post_id, payload) VALUES (?, ?)", (post.post_id, retraction.to_json()))
        self.labelled -= 1
        self.flush()
        return f"undone: the label of {post.post_id}" + ("" if unsent else f" (retracted on {topics.LABELS})")

    def progress(self) -> str:
        """The progress line."""
        left = len(self.queue)
        queued = self.pending()
        line = f"{self.labelled} labelled, {self.skipped} skipped, {left} left of {self.total}"
        return line + (f" · {queued} waiting for the broker" if queued else "")

    def sent_line(self) -> str:
        """What reached the topic this session."""
        line = f"{self.sent} label{'' if self.sent == 1 else 's'} sent to {topics.LABELS}"
        return line + (f", {self.retracted} retracted there" if self.retracted else "")


def sentiment_name(rating: int) -> str:
    """bearish / neutral / bullish."""
    return Sentiment.from_rating(rating).value
