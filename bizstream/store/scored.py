"""Scored posts in SQLite: what the sink agent writes (post fields and its Score) and what the labeler reads.

Posts and scores arrive on different topics in any order; each is an upsert of its own columns, so a row is
complete once both have come. Growth is bounded: the newest ``keep`` rows stay (``[store] keep_scored_posts``).
The same database file holds training_labels, so "unlabelled" is one query.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bizstream.analyzer import has_opinion
from bizstream.records import Post
from bizstream.store.database import transaction
from bizstream.store.labels import LabelStore


@dataclass(frozen=True)
class PostForLabeling:
    """A post as the labeler shows it."""

    post_id: str
    thread_id: str | None
    text: str
    image: str | None
    reply_to: str | None
    label: str | None
    confidence: float | None
    probabilities: dict[str, float] | None
    seen_at: float
    opinions: dict[str, str] = field(default_factory=dict)  # analyzer -> what it said ("bullish 0.82 · moon +2.5, ...")


class ScoredPostStore:
    """The scored_posts table (and the labeler's outbox and skips) of the bizstream database."""

    def __init__(self, labels: LabelStore) -> None:
        self.labels = labels
        self.db = labels.db

    def add_posts(self, posts: Iterable[Post], now: float | None = None) -> None:
        """Upsert the post columns."""
        now = time.time() if now is None else now
        rows = [(p.id, p.thread_id, p.text, _image_ref(p), p.reply_to, p.created_at, now) for p in posts]
        with transaction(self.db):
            self.db.executemany(
                "INSERT INTO scored_posts (post_id, thread_id, text, image, reply_to, created_at, seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(post_id) DO UPDATE SET thread_id = excluded.thread_id, "
                "text = excluded.text, image = excluded.image, reply_to = excluded.reply_to, "
                "created_at = excluded.created_at",
                rows,
            )

    def scored(self, post_ids: Iterable[str]) -> set[str]:
        """Those of ``post_ids`` that have a complete row (post and score)."""
        ids = list(post_ids)
        found: set[str] = set()
        for at in range(0, len(ids), 500):  # under SQLite's limit on bound parameters
            chunk = ids[at : at + 500]
            found.update(row[0] for row in self.db.execute(
                f"SELECT post_id FROM scored_posts WHERE label IS NOT NULL AND post_id IN ({','.join('?' * len(chunk))})", chunk))  # fmt: skip
        return found

    def add_scores(self, scores: Iterable[dict[str, Any]], now: float | None = None) -> None:
        """Upsert the score columns from Score messages (as decoded JSON)."""
        now = time.time() if now is None else now
        rows = [
            (s["post_id"], s["thread_id"], s["label"], s["score"], s["confidence"], orjson.dumps(s["probabilities"]).decode(),
             orjson.dumps(s).decode(), s["scored_at"], now)
            for s in scores
        ]  # fmt: skip
        with transaction(self.db):
            self.db.executemany(
                "INSERT INTO scored_posts (post_id, thread_id, label, score, confidence, probabilities, score_json, "
                "scored_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(post_id) DO UPDATE SET "
                "label = excluded.label, score = excluded.score, confidence = excluded.confidence, "
                "probabilities = excluded.probabilities, score_json = excluded.score_json, scored_at = excluded.scored_at",
                rows,
            )

    def retain(self, keep: int) -> int:
        """Delete all but the newest ``keep`` rows; returns how many went."""
        with transaction(self.db):
            cursor = self.db.execute(
                "DELETE FROM scored_posts WHERE post_id NOT IN "
                "(SELECT post_id FROM scored_posts ORDER BY seen_at DESC, post_id DESC LIMIT ?)",
                (keep,),
            )
        return cursor.rowcount

    def unlabelled(self, labeler: str, limit: int) -> list[PostForLabeling]:
        """Scored posts with text that nobody has labelled and this labeler has not skipped, newest first. An
        image-only post is not offered: its label would teach a text model nothing (the trainer passes over it)."""
        query = (
            f"SELECT {COLUMNS} FROM scored_posts "
            f"WHERE {WITH_TEXT} AND label IS NOT NULL "
            "AND post_id NOT IN (SELECT post_id FROM training_labels) "
            "AND post_id NOT IN (SELECT post_id FROM labeler_skips WHERE labeler = ?) "
            "ORDER BY seen_at DESC, post_id DESC LIMIT ?"
        )
        return [_post(row) for row in self.db.execute(query, (labeler, limit))]

    def tally(self, labeler: str) -> tuple[int, int, int]:
        """(scored posts with text, how many of them are labelled, how many of the rest this labeler skipped)."""
        query = (
            "SELECT COUNT(*), SUM(post_id IN (SELECT post_id FROM training_labels)), "
            "SUM(post_id NOT IN (SELECT post_id FROM training_labels) "
            "AND post_id IN (SELECT post_id FROM labeler_skips WHERE labeler = ?)) "
            f"FROM scored_posts WHERE {WITH_TEXT} AND label IS NOT NULL"
        )
        total, labelled, skipped = self.db.execute(query, (labeler,)).fetchone()
        return int(total), int(labelled or 0), int(skipped or 0)

    def get(self, post_id: str) -> PostForLabeling | None:
        """One post, if stored."""
        row = self.db.execute(
            f"SELECT {COLUMNS} FROM scored_posts WHERE post_id = ?",
            (post_id,),
        ).fetchone()
        return _post(row) if row else None

    def skip(self, post_id: str, labeler: str) -> None:
        """Remember that this labeler skipped a post (a resumed session does not show it again)."""
        with transaction(self.db):
            self.db.execute("INSERT OR IGNORE INTO labeler_skips VALUES (?, ?)", (post_id, labeler))

    def unskip(self, post_id: str, labeler: str) -> None:
        """Forget a skip (undo)."""
        with transaction(self.db):
            self.db.execute("DELETE FROM labeler_skips WHERE post_id = ? AND labeler = ?", (post_id, labeler))


def _image_ref(post: Post) -> str | None:
    if post.image is None:
        return None
    return post.image.path or post.image.url or f"inline {post.image.mime}"


COLUMNS = "post_id, thread_id, text, image, reply_to, label, confidence, probabilities, seen_at, score_json"
WITH_TEXT = "TRIM(COALESCE(text, '')) != ''"  # seen by the sink (text is NULL until then) and not image-only


def _post(row: tuple[Any, ...]) -> PostForLabeling:
    post_id, thread_id, text, image, reply_to, label, confidence, probabilities, seen_at, score_json = row
    return PostForLabeling(str(post_id), thread_id, text or "", image, reply_to, label, confidence,
                           orjson.loads(probabilities) if probabilities else None, float(seen_at),
                           _opinions(orjson.loads(score_json)) if score_json else {})  # fmt: skip


def _opinions(score: dict[str, Any]) -> dict[str, str]:
    """What each analyzer said about the post, in a few words: its label and confidence (or its error), and the
    words that drove it when it names them (VADER); for one that only reads (OCR), what it read."""
    said: dict[str, str] = {}
    for name, result in (score.get("analyzers") or {}).items():
        if not isinstance(result, dict):
            continue
        if result.get("error"):
            said[name] = f"error: {str(result['error'])[:120]}"
            continue
        details = result.get("details") or {}
        if not has_opinion(result.get("probabilities")):
            read = " ".join(str(details.get("ocr") or "").split())
            said[name] = f'read "{read[:80]}{"…" if len(read) > 80 else ""}"' if read else "no opinion"
            continue
        words = details.get("words")
        said[name] = f"{result.get('label')} {float(result.get('confidence') or 0):.0%}" + (f" · {words}" if words else "")
    return said
