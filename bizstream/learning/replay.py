"""Experience replay: a reservoir sample of every labelled example the trainer has seen, persisted in SQLite.

Reservoir sampling (Vitter's Algorithm R) keeps ``capacity`` items such that every item seen so far is in the
buffer with the same probability, capacity / seen. The random generator's state is stored with the items (as JSON,
not pickle), in the same transaction, so a restarted trainer continues exactly where it stopped.
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Example:
    """One labelled text."""

    post_id: str
    text: str
    rating: int


class ReplayBuffer:
    """A bounded, uniform, persistent sample of everything added."""

    def __init__(self, path: Path, capacity: int = 2000, seed: int = 42) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS replay_items (slot INTEGER PRIMARY KEY, post_id TEXT, text TEXT, rating INTEGER);
            CREATE TABLE IF NOT EXISTS replay_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )
        state = dict(self.db.execute("SELECT key, value FROM replay_state"))
        stored_capacity = int(state.get("capacity", capacity))
        if stored_capacity != capacity:
            raise ValueError(f"{path} holds a buffer of capacity {stored_capacity}, not {capacity}")
        self.seen = int(state.get("seen", 0))
        self.rng = random.Random(seed)
        if "rng" in state:
            version, internal, gauss = json.loads(state["rng"])
            self.rng.setstate((version, tuple(internal), gauss))

    def add(self, example: Example) -> None:
        """Offer one example: kept outright while there is room, afterwards in place of a random one (or not)."""
        self.add_many([example])

    def add_many(self, examples: list[Example]) -> None:
        """Offer several examples, in one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for example in examples:
                self.seen += 1
                slot = self.seen - 1 if self.seen <= self.capacity else self.rng.randrange(self.seen)
                if slot < self.capacity:
                    self.db.execute(
                        "INSERT OR REPLACE INTO replay_items VALUES (?, ?, ?, ?)",
                        (slot, example.post_id, example.text, example.rating),
                    )
            state = {"seen": str(self.seen), "capacity": str(self.capacity), "rng": json.dumps(self.rng.getstate())}
            self.db.executemany("INSERT OR REPLACE INTO replay_state VALUES (?, ?)", state.items())
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def items(self) -> list[Example]:
        """Everything in the buffer, by slot."""
        return [Example(*row) for row in self.db.execute("SELECT post_id, text, rating FROM replay_items ORDER BY slot")]

    def sample(self, k: int, seed: int) -> list[Example]:
        """k examples drawn without replacement (all of them when k >= len)."""
        items = self.items()
        return items if k >= len(items) else random.Random(seed).sample(items, k)

    def __len__(self) -> int:
        (n,) = self.db.execute("SELECT COUNT(*) FROM replay_items").fetchone()
        return int(n)

    def close(self) -> None:
        """Close the database."""
        self.db.close()
