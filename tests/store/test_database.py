"""The SQLite schema: under processes started together (``bizstream up`` starts six on a new file), and brought up to
date under data already there."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from bizstream.learning.job import LAST_FULL, LAST_TRAINED
from bizstream.store.database import MIGRATIONS, connect
from bizstream.store.labels import LabelRow, LabelStore
from bizstream.store.trainer_state import TrainerState


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


def test_labels_stored_before_arrival_numbers_keep_their_order_and_the_trainer_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bizstream.db"
    old = sqlite3.connect(path, isolation_level=None)
    before = MIGRATIONS.index(next(m for m in MIGRATIONS if "arrival" in m))
    for script in MIGRATIONS[:before]:
        for statement in filter(str.strip, script.split(";")):
            old.execute(statement)
    old.execute(f"PRAGMA user_version = {before}")
    old.executemany("INSERT INTO training_labels (post_id, text, rating, labeler, labeled_at, source) VALUES (?, 't', 2, 'me', ?, 'human')",
                    [("c", 300.0), ("a", 100.0), ("b", 200.0), ("d", 400.0)])  # fmt: skip
    old.executemany("INSERT INTO trainer_state (key, value) VALUES (?, ?)", [("last_trained_at", "300.0"), ("last_full_at", "150")])
    old.close()
    store, state = LabelStore(path), TrainerState(path)
    assert [(r.post_id, r.arrival) for r in store.rows()] == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    assert (state.get(LAST_TRAINED), state.get(LAST_FULL)) == ("3", "1")  # trained up to c; a full job on a only
    assert [r.post_id for r in store.rows_since(int(state.get(LAST_TRAINED) or 0))] == ["d"]
    store.add([LabelRow("e", "t", 2, "me", labeled_at=50.0)])
    assert store.rows()[-1].arrival == 5
