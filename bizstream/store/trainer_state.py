"""The trainer's memory in the bizstream database: small persistent markers (a job running, labels trained up to
when) and the pool of recent unlabelled posts that pseudo-labels come from."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from bizstream.store.database import connect, transaction


class TrainerState:
    """The trainer_state key/value table."""

    def __init__(self, path: Path) -> None:
        self.db = connect(path)

    def get(self, key: str, default: str | None = None) -> str | None:
        """One value, or ``default`` when unset."""
        row = self.db.execute("SELECT value FROM trainer_state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set(self, **values: str | None) -> None:
        """Set (or, with None, delete) values, in one transaction."""
        with transaction(self.db):
            for key, value in values.items():
                if value is None:
                    self.db.execute("DELETE FROM trainer_state WHERE key = ?", (key,))
                else:
                    self.db.execute("INSERT OR REPLACE INTO trainer_state VALUES (?, ?)", (key, value))

    def close(self) -> None:
        """Close the connection."""
        self.db.close()


class RecentPosts:
    """The recent_posts table: (post id, text) of the newest posts the trainer saw, for pseudo-labels."""

    def __init__(self, path: Path) -> None:
        self.db = connect(path)

    def remember(self, posts: Iterable[tuple[str, str]], keep: int, now: float | None = None) -> None:
        """Add posts and keep only the newest ``keep``."""
        now = time.time() if now is None else now
        with transaction(self.db):
            self.db.executemany("INSERT OR REPLACE INTO recent_posts VALUES (?, ?, ?)", [(p, t, now) for p, t in posts])
            self.db.execute(
                "DELETE FROM recent_posts WHERE post_id NOT IN "
                "(SELECT post_id FROM recent_posts ORDER BY seen_at DESC, post_id LIMIT ?)",
                (keep,),
            )

    def unlabelled(self, limit: int) -> list[tuple[str, str]]:
        """The newest remembered posts that nobody (human or pseudo) has labelled, newest first."""
        query = (
            "SELECT post_id, text FROM recent_posts WHERE post_id NOT IN (SELECT post_id FROM training_labels) "
            "ORDER BY seen_at DESC, post_id LIMIT ?"
        )
        return [(str(p), str(t)) for p, t in self.db.execute(query, (limit,))]

    def close(self) -> None:
        """Close the connection."""
        self.db.close()
