"""Training labels in SQLite (the embedded default), with migrations, imports and a Hugging Face Dataset loader."""

from __future__ import annotations

import csv
import hashlib
import io
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bizstream.errors import BizstreamError
from bizstream.records import SENTIMENTS, Sentiment

# Each entry moves the schema one version on; PRAGMA user_version says how many have been applied.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE training_labels (
        post_id    TEXT NOT NULL,
        thread_id  TEXT,
        text       TEXT NOT NULL,
        rating     INTEGER NOT NULL CHECK (rating IN (1, 2, 3)),
        labeler    TEXT NOT NULL,
        labeled_at REAL NOT NULL,
        source     TEXT NOT NULL CHECK (source IN ('human', 'pseudo')),
        PRIMARY KEY (post_id, labeler)
    );
    CREATE INDEX training_labels_by_time ON training_labels (labeled_at);
    """,
    """
    CREATE TABLE trainer_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    CREATE TABLE recent_posts (post_id TEXT PRIMARY KEY, text TEXT NOT NULL, seen_at REAL NOT NULL);
    CREATE INDEX recent_posts_by_time ON recent_posts (seen_at);
    """,
    """
    CREATE TABLE scored_posts (
        post_id TEXT PRIMARY KEY, thread_id TEXT, text TEXT, image TEXT, reply_to TEXT, created_at TEXT,
        label TEXT, score REAL, confidence REAL, probabilities TEXT, score_json TEXT, scored_at REAL,
        seen_at REAL NOT NULL
    );
    CREATE INDEX scored_posts_by_time ON scored_posts (seen_at);
    CREATE TABLE label_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, post_id TEXT NOT NULL, payload BLOB NOT NULL);
    CREATE TABLE labeler_skips (post_id TEXT NOT NULL, labeler TEXT NOT NULL, PRIMARY KEY (post_id, labeler));
    """,
)


@dataclass(frozen=True)
class LabelRow:
    """One row of training_labels."""

    post_id: str
    text: str
    rating: int
    labeler: str
    thread_id: str | None = None
    source: str = "human"
    labeled_at: float = field(default_factory=time.time)

    @property
    def sentiment(self) -> str:
        """bearish / neutral / bullish."""
        return Sentiment.from_rating(self.rating).value


@dataclass(frozen=True)
class ImportReport:
    """What `labels import` did: rows imported and, for each bad row, its line number and why."""

    imported: int
    errors: list[tuple[int, str]]


class LabelStore:
    """The training_labels table of one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)  # explicit transactions below
        self.db.execute("PRAGMA journal_mode=WAL")
        self._migrate()

    def _migrate(self) -> None:
        (version,) = self.db.execute("PRAGMA user_version").fetchone()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def add(self, rows: Iterable[LabelRow]) -> int:
        """Insert or replace rows (one per post and labeler), all in one transaction; returns how many."""
        rows = list(rows)
        with _transaction(self.db):
            self.db.executemany(
                "INSERT OR REPLACE INTO training_labels (post_id, text, rating, labeler, thread_id, source, labeled_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [astuple(r) for r in rows],
            )
        return len(rows)

    def rows(self, source: str | None = None) -> list[LabelRow]:
        """Every row (of one source, if given), oldest first."""
        query = "SELECT post_id, text, rating, labeler, thread_id, source, labeled_at FROM training_labels"
        args: tuple[Any, ...] = ()
        if source is not None:
            query += " WHERE source = ?"
            args = (source,)
        return [LabelRow(*r) for r in self.db.execute(query + " ORDER BY labeled_at, post_id", args)]

    def get_state(self, key: str, default: str | None = None) -> str | None:
        """A value of the trainer's small persistent state."""
        row = self.db.execute("SELECT value FROM trainer_state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_state(self, **values: str | None) -> None:
        """Set (or, with None, delete) trainer state values, in one transaction."""
        with _transaction(self.db):
            for key, value in values.items():
                if value is None:
                    self.db.execute("DELETE FROM trainer_state WHERE key = ?", (key,))
                else:
                    self.db.execute("INSERT OR REPLACE INTO trainer_state VALUES (?, ?)", (key, value))

    def count_since(self, labeled_after: float) -> int:
        """How many human labels were given after a time."""
        query = "SELECT COUNT(*) FROM training_labels WHERE labeled_at > ? AND source = 'human'"
        (n,) = self.db.execute(query, (labeled_after,)).fetchone()
        return int(n)

    def rows_since(self, labeled_after: float) -> list[LabelRow]:
        """Human labels given after a time, oldest first."""
        return [r for r in self.rows(source="human") if r.labeled_at > labeled_after]

    def remember_posts(self, posts: Iterable[tuple[str, str]], keep: int, now: float | None = None) -> None:
        """Keep (post id, text) of recent posts, the newest ``keep`` of them: the pool pseudo-labels come from."""
        now = time.time() if now is None else now
        with _transaction(self.db):
            self.db.executemany("INSERT OR REPLACE INTO recent_posts VALUES (?, ?, ?)", [(p, t, now) for p, t in posts])
            self.db.execute(
                "DELETE FROM recent_posts WHERE post_id NOT IN "
                "(SELECT post_id FROM recent_posts ORDER BY seen_at DESC, post_id LIMIT ?)",
                (keep,),
            )

    def unlabelled_posts(self, limit: int) -> list[tuple[str, str]]:
        """The newest remembered posts that nobody (human or pseudo) has labelled, newest first."""
        query = (
            "SELECT post_id, text FROM recent_posts WHERE post_id NOT IN (SELECT post_id FROM training_labels) "
            "ORDER BY seen_at DESC, post_id LIMIT ?"
        )
        return [(str(p), str(t)) for p, t in self.db.execute(query, (limit,))]

    def count(self) -> int:
        """How many rows."""
        (n,) = self.db.execute("SELECT COUNT(*) FROM training_labels").fetchone()
        return int(n)

    def import_file(self, path: Path, labeler: str = "import") -> ImportReport:
        """Import CSV (by extension) or JSON lines: `text` plus `label` or `rating`; bad rows reported, good ones kept."""
        good: list[LabelRow] = []
        errors: list[tuple[int, str]] = []
        for line, record in _records(path):
            try:
                good.append(_row(record, labeler))
            except ValueError as exc:
                errors.append((line, str(exc)))
        imported = self.add(good)  # one transaction: all good rows, or none if anything fails underneath
        return ImportReport(imported, errors)

    def dataset(self, seed: int = 42, test_size: float = 0.2) -> Any:
        """A Hugging Face DatasetDict (train / test) of text + label, split 80/20 stratified by label, seeded.

        One example per post: a human label wins over a pseudo-label, then the most recent.
        """
        from datasets import ClassLabel, Dataset, Features, Value

        classes = [s.value for s in SENTIMENTS]

        def priority(row: LabelRow) -> tuple[bool, float]:
            return (row.source == "human", row.labeled_at)

        chosen: dict[str, LabelRow] = {}
        for row in self.rows():
            if row.post_id not in chosen or priority(row) >= priority(chosen[row.post_id]):
                chosen[row.post_id] = row
        rows = sorted(chosen.values(), key=lambda r: r.post_id)
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


def transaction(db: sqlite3.Connection) -> _transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an exception), for connections in autocommit mode."""
    return _transaction(db)


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        for record in reader:
            yield reader.line_num, record
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, {"__error__": f"not valid JSON: {exc}"}
            continue
        yield number, record if isinstance(record, dict) else {"__error__": "not a JSON object"}


def _row(record: dict[str, Any], labeler: str) -> LabelRow:
    if "__error__" in record:
        raise ValueError(record["__error__"])
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    rating = _rating(record)
    post_id = record.get("post_id") or record.get("id") or "sha1-" + hashlib.sha1(text.encode()).hexdigest()[:16]
    source = record.get("source") or "human"
    if source not in ("human", "pseudo"):
        raise ValueError(f"'source' must be human or pseudo, got {source!r}")
    return LabelRow(
        post_id=str(post_id),
        text=text,
        rating=rating,
        labeler=str(record.get("labeler") or labeler),
        thread_id=str(record["thread_id"]) if record.get("thread_id") else None,
        source=source,
    )


def _rating(record: dict[str, Any]) -> int:
    label, rating = record.get("label"), record.get("rating")
    if label not in (None, ""):
        try:
            return Sentiment(str(label).strip().lower()).rating
        except ValueError:
            raise ValueError(f"'label' must be bearish, neutral or bullish, got {label!r}") from None
    if rating not in (None, ""):
        try:
            value = int(rating)
        except (TypeError, ValueError):
            raise ValueError(f"'rating' must be 1, 2 or 3, got {rating!r}") from None
        if value not in (1, 2, 3):
            raise ValueError(f"'rating' must be 1, 2 or 3, got {rating!r}")
        return value
    raise ValueError("needs a 'label' (bearish/neutral/bullish) or a 'rating' (1..3)")
