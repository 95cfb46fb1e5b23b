"""Training labels: the training_labels table of the bizstream database, and the Hugging Face Dataset loader."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

from bizstream.errors import BizstreamError
from bizstream.records import SENTIMENTS, Sentiment
from bizstream.store.database import connect, transaction


@dataclass(frozen=True)
class LabelRow:
    """One row of training_labels."""

    post_id: str
    text: str
    rating: int
    labeler: str
    thread_id: str | None = None
    source: str = "human"
    labeled_at: float = field(default_factory=time.time)  # by the labeler's clock
    arrival: int = 0  # its place in the order labels reached this store (1, 2, ...; 0 before it is stored)

    @property
    def sentiment(self) -> str:
        """bearish / neutral / bullish."""
        return Sentiment.from_rating(self.rating).value


_UPSERT = """
    INSERT INTO training_labels (post_id, text, rating, labeler, thread_id, source, labeled_at, arrival)
    VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(arrival), 0) + 1 FROM training_labels))
    ON CONFLICT (post_id, labeler) DO UPDATE SET text = excluded.text, rating = excluded.rating,
        thread_id = excluded.thread_id, source = excluded.source, labeled_at = excluded.labeled_at,
        arrival = CASE WHEN (text, rating, source) IS (excluded.text, excluded.rating, excluded.source) THEN arrival
                       ELSE excluded.arrival END
"""


class LabelStore:
    """The training_labels table of one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def add(self, rows: Iterable[LabelRow]) -> int:
        """Insert or replace rows (one per post and labeler), all in one transaction; returns how many. A new row, or
        one whose text, rating or source changed, takes the next arrival number (so it counts as new since the last
        training); the same label stored again (a re-delivered message, a file imported twice) keeps its place."""
        rows = list(rows)
        with transaction(self.db):
            self.write(rows)
        return len(rows)

    def write(self, rows: Iterable[LabelRow]) -> None:
        """What :meth:`add` does, inside the caller's transaction (the labeler writes a label and its outbox entry
        together)."""
        self.db.executemany(_UPSERT, [astuple(r)[:7] for r in rows])

    def retract(self, post_id: str, labeler: str, before: float) -> int:
        """Forget this labeler's label of a post given no later than ``before`` (a retraction's time); how many went."""
        with transaction(self.db):
            cursor = self.db.execute("DELETE FROM training_labels WHERE post_id = ? AND labeler = ? AND labeled_at <= ?",
                                     (post_id, labeler, before))  # fmt: skip
        return cursor.rowcount

    def rows(self, source: str | None = None, after: int = -1) -> list[LabelRow]:
        """Every row (of one source, if given; that came after arrival number ``after``), in the order they came."""
        query = "SELECT post_id, text, rating, labeler, thread_id, source, labeled_at, arrival FROM training_labels WHERE arrival > ?"
        args: tuple[Any, ...] = (after,)
        if source is not None:
            query += " AND source = ?"
            args = (after, source)
        return [LabelRow(*r) for r in self.db.execute(query + " ORDER BY arrival", args)]

    def count_since(self, arrival: int) -> int:
        """How many human labels came after arrival number ``arrival``."""
        query = "SELECT COUNT(*) FROM training_labels WHERE arrival > ? AND source = 'human'"
        (n,) = self.db.execute(query, (arrival,)).fetchone()
        return int(n)

    def rows_since(self, arrival: int) -> list[LabelRow]:
        """Human labels that came after arrival number ``arrival``, in the order they came."""
        return self.rows(source="human", after=arrival)

    def count(self) -> int:
        """How many rows."""
        (n,) = self.db.execute("SELECT COUNT(*) FROM training_labels").fetchone()
        return int(n)

    def examples(self) -> list[LabelRow]:
        """One row per post, by post id: a human label wins over a pseudo-label, then the most recent."""

        def priority(row: LabelRow) -> tuple[bool, float]:
            return (row.source == "human", row.labeled_at)

        chosen: dict[str, LabelRow] = {}
        for row in self.rows():
            if row.post_id not in chosen or priority(row) >= priority(chosen[row.post_id]):
                chosen[row.post_id] = row
        return sorted(chosen.values(), key=lambda r: r.post_id)

    def dataset(self, seed: int = 42, test_size: float = 0.2) -> Any:
        """A Hugging Face DatasetDict (train / test) of text + label (:meth:`examples`), split 80/20 stratified by
        label, seeded. For training elsewhere; the project's own training splits on the evaluation holdout."""
        from datasets import ClassLabel, Dataset, Features, Value

        classes = [s.value for s in SENTIMENTS]
        rows = self.examples()
        features = Features({"text": Value("string"), "label": ClassLabel(names=classes), "post_id": Value("string")})
        data = Dataset.from_dict(
            {"text": [r.text for r in rows], "label": [classes.index(r.sentiment) for r in rows], "post_id": [r.post_id for r in rows]},
            features=features,
        )
        try:
            return data.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")
        except ValueError as exc:
            counts = {c: sum(1 for r in rows if r.sentiment == c) for c in classes}
            raise BizstreamError(
                f"cannot split {len(rows)} labelled posts {counts} {1 - test_size:.0%}/{test_size:.0%} by label ({exc}); "
                f"label more posts, at least 5 of each class"
            ) from None
