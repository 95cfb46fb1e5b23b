from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from bizstream.store.database import MIGRATIONS
from bizstream.store.label_files import read_label_file
from bizstream.store.labels import LabelRow, LabelStore


def test_import_reports_bad_rows_by_line_and_keeps_the_good_ones(tmp_path: Path) -> None:
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(
        "text,label,rating\n"
        "moon soon,bullish,\n"
        "rekt,,1\n"
        ",bullish,\n"
        "meh,sideways,\n"
        "ok then,,7\n"
        "fine,NEUTRAL,\n"
    )
    store = LabelStore(tmp_path / "db.sqlite")
    report = read_label_file(csv_file)
    assert store.add(report.rows) == 3
    assert report.errors == [
        (4, "'text' must be a non-empty string"),
        (5, "'label' must be bearish, neutral or bullish, got 'sideways'"),
        (6, "'rating' must be 1, 2 or 3, got '7'"),
    ]
    assert sorted(r.sentiment for r in store.rows()) == ["bearish", "bullish", "neutral"]

    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text('{"post_id": "p1", "text": "wagmi", "rating": 3}\nnot json\n\n{"text": "x"}\n')
    report = read_label_file(jsonl)
    assert store.add(report.rows) == 1
    assert [line for line, _ in report.errors] == [2, 4]


def test_nothing_is_half_written(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "db.sqlite")
    store.add([LabelRow("p0", "before", 2, "me")])
    # A failure underneath, on the 3rd row of the import: the whole import must roll back.
    store.db.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON training_labels WHEN NEW.text = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    file = tmp_path / "l.jsonl"
    file.write_text("\n".join(f'{{"text": "{t}", "rating": 3}}' for t in ["a", "b", "boom", "c"]))
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        store.add(read_label_file(file).rows)
    assert [r.text for r in store.rows()] == ["before"]


def test_migrations_run_once(tmp_path: Path) -> None:
    LabelStore(tmp_path / "db.sqlite").add([LabelRow("p", "t", 1, "me")])
    again = LabelStore(tmp_path / "db.sqlite")
    assert again.db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    assert again.count() == 1


def test_dataset_is_a_seeded_stratified_80_20_split(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "db.sqlite")
    rows = [LabelRow(f"p{i}", f"text {i}", 1 + i % 3, "me") for i in range(150)]
    rows.append(LabelRow("p0", "text 0 by a bot", 3, "bot", source="pseudo"))  # human wins over pseudo
    store.add(rows)
    data = store.dataset(seed=7)
    assert (len(data["train"]), len(data["test"])) == (120, 30)
    assert Counter(list(data["test"]["label"])) == {0: 10, 1: 10, 2: 10}
    test_ids = list(data["test"]["post_id"])
    assert list(store.dataset(seed=7)["test"]["post_id"]) == test_ids
    assert list(store.dataset(seed=8)["test"]["post_id"]) != test_ids
    ids = list(data["train"]["post_id"]) + test_ids
    texts = list(data["train"]["text"]) + list(data["test"]["text"])
    everything = dict(zip(ids, texts, strict=True))
    assert everything["p0"] == "text 0"


def test_sink_pairing_writes_only_complete_pairs_in_either_order() -> None:
    from bizstream.records import Post
    from bizstream.stream.sink import Pairing

    pairing = Pairing(limit=2)
    assert pairing.add_post(Post(id="a", text="x", thread_id="t")) is None
    pair = pairing.add_score({"post_id": "a"})
    assert pair is not None and pair[0].id == "a"
    assert pairing.add_score({"post_id": "b"}) is None  # the score first, the post later
    pair = pairing.add_post(Post(id="b", text="y", thread_id="t"))
    assert pair is not None and pair[1] == {"post_id": "b"}
    for key in ("c", "d", "e"):
        pairing.add_score({"post_id": key})
    assert list(pairing.scores) == ["d", "e"]  # bounded, oldest dropped
