"""The trainer agent's two speeds: which job the labels call for (the agent itself runs in tests/integration/)."""

from __future__ import annotations

import json
from pathlib import Path

from bizstream.learning.job import HEAD_ACCURACIES, LAST_FULL, LAST_TRAINED
from bizstream.settings import Settings
from bizstream.store.labels import LabelRow, LabelStore
from bizstream.store.trainer_state import TrainerState
from bizstream.stream.trainer import due


def test_head_refits_come_often_and_a_full_fine_tune_now_and_then(tmp_path: Path) -> None:
    settings = Settings().replace(store={"path": str(tmp_path / "db.sqlite")},
                                  trainer={"retrain_after": 10, "full_after": 25, "mode": "head"})  # fmt: skip
    store, state = LabelStore(settings.store_path), TrainerState(settings.store_path)

    def label(n: int, at: float) -> None:
        store.add([LabelRow(f"p{at}-{i}", "text", 2, "me", labeled_at=at + i / 100) for i in range(n)])

    label(9, 100.0)
    assert due(settings, store, state) is None
    label(1, 200.0)
    assert due(settings, store, state) == "head"
    state.set(**{LAST_TRAINED: "10"})  # the head job ran, on the first 10 labels to arrive
    label(15, 400.0)  # 25 since the last full fine-tune (there was none), 15 since the last job
    assert due(settings, store, state) == "full"
    state.set(**{LAST_TRAINED: "25", LAST_FULL: "25"})  # the full job ran
    label(9, 600.0)
    assert due(settings, store, state) is None
    never = settings.replace(trainer={"full_after": 0})
    label(20, 700.0)
    assert due(never, store, state) == "head"


def test_a_full_fine_tune_when_head_refits_stop_helping(tmp_path: Path) -> None:
    settings = Settings().replace(store={"path": str(tmp_path / "db.sqlite")},
                                  trainer={"retrain_after": 10, "full_after": 1000, "plateau_jobs": 3, "plateau_delta": 0.01})  # fmt: skip
    store, state = LabelStore(settings.store_path), TrainerState(settings.store_path)
    store.add([LabelRow(f"p{i}", "text", 2, "me", labeled_at=100 + i) for i in range(30)])
    state.set(**{LAST_TRAINED: "0", HEAD_ACCURACIES: json.dumps([0.60, 0.65, 0.70])})  # still improving
    assert due(settings, store, state) == "head"
    state.set(**{HEAD_ACCURACIES: json.dumps([0.55, 0.70, 0.705, 0.70])})  # the last three: no gain over the first
    assert due(settings, store, state) == "full"
    assert due(settings.replace(trainer={"plateau_jobs": 0}), store, state) == "head"  # the rule off
    state.set(**{LAST_FULL: "25"})  # a full fine-tune ran 5 labels ago: not yet
    assert due(settings, store, state) == "head"


def test_a_label_is_new_when_it_arrives_whatever_its_labelers_clock_says(tmp_path: Path) -> None:
    settings = Settings().replace(store={"path": str(tmp_path / "db.sqlite")}, trainer={"retrain_after": 10, "full_after": 0})
    store, state = LabelStore(settings.store_path), TrainerState(settings.store_path)
    store.add([LabelRow(f"now{i}", "text", 2, "me", labeled_at=2_000_000 + i) for i in range(10)])
    state.set(**{LAST_TRAINED: "10"})  # trained on those
    # Labels exported elsewhere last month, or from a laptop whose clock is behind: older by the clock, new here.
    store.add([LabelRow(f"old{i}", "text", 1, "them", labeled_at=1_000_000 + i) for i in range(10)])
    assert due(settings, store, state) == "head"
    assert [r.post_id for r in store.rows_since(10)] == [f"old{i}" for i in range(10)]
    state.set(**{LAST_TRAINED: "20"})
    store.add([LabelRow(f"old{i}", "text", 1, "them", labeled_at=3_000_000 + i) for i in range(10)])  # given again
    assert store.count_since(20) == 0 and store.count() == 20  # the same labels: nothing new
    store.add([LabelRow("old3", "text", 3, "them", labeled_at=1_000_003)])  # but a changed rating is
    assert [r.post_id for r in store.rows_since(20)] == ["old3"]
