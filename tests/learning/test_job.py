from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bizstream.learning.dataset import Split, in_holdout
from bizstream.learning.job import LAST_FULL, LAST_TRAINED, RUNNING, run_training_job
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.learning.replay import ReplayBuffer
from bizstream.settings import Settings
from bizstream.store.labels import LabelRow, LabelStore
from bizstream.store.trainer_state import TrainerState
from tests.conftest import ROOT, child_env, separable

FLIP = {"bullish": 3, "bearish": 1, "neutral": 2}


def setup(trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> tuple[Settings, ModelRegistry]:
    registry, metadata, _ = trained
    copy = tmp_path / "registry"
    shutil.copytree(registry.root, copy, symlinks=True)
    settings = Settings().replace(
        broker={"cache_dir": str(tmp_path / "cache")},
        store={"path": str(tmp_path / "labels.sqlite")},
        setfit={"registry": str(copy)},
        tracking={"enabled": False},
    )
    ModelRegistry(copy).promote(metadata.version)
    return settings, ModelRegistry(copy)


def label_rows(coins: list[str], flip: bool, at: float) -> list[LabelRow]:
    texts, labels = separable(coins)
    flipped = {"bullish": "bearish", "bearish": "bullish", "neutral": "neutral"}
    return [
        LabelRow(f"{t}-{flip}", t, FLIP[flipped[label] if flip else label], "me", labeled_at=at + i / 1000)
        for i, (t, label) in enumerate(zip(texts, labels, strict=True))
    ]


def test_a_candidate_that_forgets_is_not_promoted(trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> None:
    settings, registry = setup(trained, tmp_path)
    store = LabelStore(settings.store_path)
    store.add(label_rows(["$BTC", "$ETH", "$SOL", "$DOGE"], flip=False, at=1000.0))
    first = run_training_job(settings, "labels")
    assert first.promoted and registry.serving() == first.candidate
    holdout = [r for r in store.rows() if in_holdout(r.post_id, settings.trainer.eval_share)]
    assert 0 < len(holdout) < 60 and first.metrics["recent_examples"] == len(holdout)
    assert "holdout_examples" not in first.metrics  # with no earlier labels the recent ones are the whole holdout
    # Only what was trained on is remembered for replay: never the evaluation holdout.
    assert len(ReplayBuffer(settings.store_path.with_name("replay.sqlite"), 2000)) == 60 - len(holdout)
    assert TrainerState(settings.store_path).get(RUNNING) is None and TrainerState(settings.store_path).get(LAST_TRAINED) == "60"

    # New labels that say the opposite of everything before, about the same coins and more: learning them, the
    # candidate does badly on the earlier holdout labels (it forgot), so the serving model stays.
    store.add(label_rows(["$BTC", "$ETH", "$SOL", "$DOGE", "$ADA", "$XRP", "$LINK", "$DOT"], flip=True, at=2000.0))
    second = run_training_job(settings, "labels")
    assert not second.promoted and registry.serving() == first.candidate
    assert "earlier" in second.why and second.metrics["earlier_examples"] == len(holdout)
    # The whole holdout decides; its earlier part, where the candidate forgot, blocks on a significant drop.
    assert second.metrics["holdout_examples"] == len(holdout) + second.metrics["recent_examples"] and "p=" in second.why
    decision = registry.decision(second.candidate or "") or {}
    assert (decision["promoted"], decision["why"]) == (False, second.why)
    assert [o.promoted for o in second.outcomes if o.trainer == "setfit"] == [False]
    assert second.metrics["earlier_accuracy"] < second.metrics["earlier_accuracy_serving"]
    assert second.metrics["replay_labels"] > 0  # the mix drew on the replay buffer


@pytest.mark.slow
def test_a_killed_job_leaves_the_serving_model_and_resumes(trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> None:
    settings, registry = setup(trained, tmp_path)
    serving = registry.serving()
    store = LabelStore(settings.store_path)
    store.add(label_rows(["$BTC", "$ETH", "$SOL", "$DOGE", "$ADA", "$XRP"], flip=False, at=1000.0))
    env = child_env()
    env.update(
        BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_STORE__PATH=str(settings.store_path),
        BIZSTREAM_SETFIT__REGISTRY=str(registry.root), BIZSTREAM_TRACKING__ENABLED="false",
        BIZSTREAM_TRAINER__MODE="full",  # a contrastive fine-tune: long enough to be killed in the middle
    )  # fmt: skip
    job = subprocess.Popen([sys.executable, "-m", "bizstream.learning.job"], env=env, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while TrainerState(settings.store_path).get(RUNNING) is None:
        assert time.monotonic() < deadline and job.poll() is None
        time.sleep(0.2)
    time.sleep(3)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert registry.serving() == serving  # untouched
    assert TrainerState(settings.store_path).get(RUNNING) == "labels"  # the marker says a job must be resumed
    assert TrainerState(settings.store_path).get(LAST_TRAINED) is None
    result = run_training_job(settings.replace(trainer={"mode": "head"}), "labels")
    assert result.candidate is not None and TrainerState(settings.store_path).get(RUNNING) is None


def test_a_drift_job_right_after_a_label_job_still_learns(trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> None:
    settings, _ = setup(trained, tmp_path)
    LabelStore(settings.store_path).add(label_rows(["$BTC", "$ETH", "$SOL", "$DOGE"], flip=False, at=1000.0))
    run_training_job(settings, "labels")
    again = run_training_job(settings, "labels")
    assert again.candidate is None and "only 0 new labels" in again.why  # nothing new: nothing to do
    drift = run_training_job(settings, "drift")  # but drift retrains on the latest labels
    assert drift.candidate is not None and drift.metrics["new_labels"] > 0


@pytest.mark.slow
def test_a_full_job_learns_from_every_label_since_the_last_full_one(trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> None:
    settings, registry = setup(trained, tmp_path)
    store, state = LabelStore(settings.store_path), TrainerState(settings.store_path)
    store.add(label_rows(["$BTC", "$ETH"], flip=False, at=1000.0))
    head = run_training_job(settings, "labels")  # a head refit: the clock of head jobs moves on
    assert registry.metadata(head.candidate or "").kind == "head" and state.get(LAST_FULL) is None
    store.add(label_rows(["$SOL", "$DOGE"], flip=False, at=2000.0))
    full = run_training_job(settings.replace(trainer={"mode": "full"}), "labels")
    assert registry.metadata(full.candidate or "").kind == "full"
    assert full.metrics["new_labels"] > head.metrics["new_labels"]  # all four coins' labels, not only the last two
    assert state.get(LAST_FULL) == str(max(r.arrival for r in store.rows(source="human")))
