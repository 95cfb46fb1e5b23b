"""The SQLite schema under processes started together (``bizstream up`` starts six on a new file)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from bizstream.store.database import MIGRATIONS, connect


def test_a_connection_waits_for_a_migration_under_way_and_finds_the_schema_there(tmp_path: Path) -> None:
    path = tmp_path / "bizstream.db"
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("PRAGMA journal_mode=WAL")
    first.execute("BEGIN IMMEDIATE")  # another process in the middle of migrating the new file
    for script in MIGRATIONS:
        for statement in filter(str.strip, script.split(";")):
            first.execute(statement)
    first.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
    outcome: list[object] = []

    def second() -> None:
        try:
            outcome.append(connect(path).execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    assert not outcome  # still waiting for the lock, not racing ahead on version 0
    first.execute("COMMIT")
    thread.join(timeout=30)
    assert outcome == [len(MIGRATIONS)]
