"""The bizstream SQLite database (the embedded default): one file holding training labels, the trainer's state and
recent-post pool, scored posts and the labeler's outbox. Opened by each store with :func:`connect`, which brings the
schema up to date."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
    # "New since the last training" is counted in the order labels reach the store, not by the time a labeler's
    # clock gave them: a late label (imported, re-sent, or from a machine whose clock is behind) is new all the same.
    # Rows already there are numbered by time, and the trainer's "trained up to <time>" becomes the same point in
    # that order.
    """
    ALTER TABLE training_labels ADD COLUMN arrival INTEGER NOT NULL DEFAULT 0;
    UPDATE training_labels SET arrival = numbered.n
        FROM (SELECT rowid AS r, ROW_NUMBER() OVER (ORDER BY labeled_at, post_id, labeler) AS n FROM training_labels)
        AS numbered WHERE training_labels.rowid = numbered.r;
    CREATE INDEX training_labels_by_arrival ON training_labels (arrival);
    UPDATE trainer_state SET key = 'last_trained_arrival', value = (SELECT CAST(COALESCE(MAX(arrival), 0) AS TEXT)
        FROM training_labels WHERE labeled_at <= CAST(trainer_state.value AS REAL)) WHERE key = 'last_trained_at';
    UPDATE trainer_state SET key = 'last_full_arrival', value = (SELECT CAST(COALESCE(MAX(arrival), 0) AS TEXT)
        FROM training_labels WHERE labeled_at <= CAST(trainer_state.value AS REAL)) WHERE key = 'last_full_at';
    """,
)


LOCK_WAIT_S = 30.0  # how long a connection waits for another process's write (a migration, a batch of rows)


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (explicit transactions with :func:`transaction`), WAL, schema migrated.

    The schema version is read inside the write lock: processes started together on a new file (``bizstream up``
    starts six) migrate one after the other, and each later one finds the schema already there. Read outside it, two
    of them both saw version 0 and the second failed on "table ... already exists"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=LOCK_WAIT_S)
    db.execute("PRAGMA journal_mode=WAL")
    with transaction(db):
        (version,) = db.execute("PRAGMA user_version").fetchone()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in filter(str.strip, script.split(";")):  # no ';' inside a statement
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
    return db


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
