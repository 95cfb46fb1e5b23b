"""The whole loop: a slang word flips meaning midway; drift is announced, the trainer retrains, the new model is
right about the new meaning, and scores keep flowing throughout."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.learning.trainers import accuracy
from bizstream.records import DriftEvent, Label, Sentiment
from bizstream.store.labels import LabelStore
from bizstream.stream import topics
from bizstream_plugins.setfit.training import SetfitTrainer
from tests.conftest import BEARISH, BULLISH, NEUTRAL
from tests.integration.conftest import Cluster, scores_by_id

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COINS = ["$BTC", "$ETH", "$SOL", "$DOGE", "$LINK", "$ADA", "$XRP", "$DOT", "$AVAX", "$PEPE", "$ARB", "$OP"]
MOON = "{c} to the moon, buying more"


def posts(start: int, flipped: bool, rounds: int) -> list[tuple[str, str, str]]:
    """(id, text, true label): the usual templates, and moon posts, which after the flip mean bearish."""
    out = []
    i = start
    for r in range(rounds):
        for coin in COINS:
            for template, label in [(MOON, "bearish" if flipped else "bullish"), (BULLISH[1], "bullish"),
                                    (BEARISH[r % 5], "bearish"), (NEUTRAL[r % 5], "neutral")]:  # fmt: skip
                if flipped and template == MOON:
                    for _ in range(2):  # moon talk is everywhere after the flip
                        out.append((f"p{i}", template.format(c=coin) + f" #{i}", label))
                        i += 1
                else:
                    out.append((f"p{i}", template.format(c=coin) + f" #{i}", label))
                    i += 1
    return out


def test_slang_flip_drift_retrain_promote(cluster: Cluster, trained: tuple[ModelRegistry, ModelMetadata, Split], tmp_path: Path) -> None:
    source, first, _ = trained
    registry = ModelRegistry(tmp_path / "registry")
    shutil.copytree(source.root, registry.root, symlinks=True)
    registry.promote(first.version)
    common = {"BIZSTREAM_SETFIT__REGISTRY": str(registry.root), "BIZSTREAM_SETFIT__RUNTIME": "torch",
              "BIZSTREAM_STORE__PATH": str(tmp_path / "labels.sqlite"), "BIZSTREAM_TRACKING__ENABLED": "false",
              "BIZSTREAM_DRIFT__MIN_LABELS": "50", "BIZSTREAM_TRAINER__RETRAIN_AFTER": "100000",
              # Only drift may start a job here: the 1,080 labels would also pass trainer.full_after (1,000), and on a
              # busy machine that label-count job started before the drift one (CI, 2026-11-26).
              "BIZSTREAM_TRAINER__FULL_AFTER": "0", "BIZSTREAM_TRAINER__PSEUDO_LABELS": "false"}  # fmt: skip
    for command in ("worker", "monitor", "trainer"):
        cluster.start_worker(command, **common)

    def stream(batch: list[tuple[str, str, str]]) -> None:
        cluster.produce(topics.POSTS, ((b"t" + i.encode()[-1:], orjson.dumps({"id": i, "text": t})) for i, t, _ in batch))
        want = {i for i, _, _ in batch}
        cluster.wait_for(topics.SCORES, lambda m: want <= set(scores_by_id(m)), timeout_s=120)  # scores keep flowing
        cluster.produce(topics.LABELS, ((i.encode(), Label(i, Sentiment(y).rating, "tester", text=t).to_json()) for i, t, y in batch))

    before = posts(0, flipped=False, rounds=10)  # 480 posts in the old meaning
    stream(before)
    assert cluster.read(topics.DRIFT, timeout_s=8) == []
    after = posts(len(before), flipped=True, rounds=10)  # moon posts now mean bearish
    stream(after)
    drift = cluster.wait_for(topics.DRIFT, lambda m: any(orjson.loads(x.value)["analyzer"] == "setfit" for x in m), timeout_s=90)
    event = next(orjson.loads(x.value) for x in drift if orjson.loads(x.value)["analyzer"] == "setfit")
    assert event["window_before"] + event["window_after"] - len(before) <= 400  # within a bounded number of labels
    def setfit_events(messages: list[Any]) -> list[dict[str, Any]]:
        return [e for e in map(orjson.loads, (x.value for x in messages)) if e["analyzer"] == "setfit"]

    models = cluster.wait_for(topics.MODELS, lambda m: any(e["promoted"] for e in setfit_events(m)), timeout_s=180)
    promoted = next(e for e in setfit_events(models) if e["promoted"])
    assert promoted["reason"] == "drift"
    assert promoted["metrics"]["recent_accuracy"] > promoted["metrics"]["recent_accuracy_serving"]  # better on the new labels

    # The drift job may start while the flipped labels are still arriving. Once they are all stored, the next drift-
    # triggered job learns the new meaning from all of them, and what serves then is right about new moon posts.
    store = LabelStore(tmp_path / "labels.sqlite")
    deadline = time.monotonic() + 60
    while store.count() < len(before) + len(after) and time.monotonic() < deadline:
        time.sleep(0.5)
    drift_again = DriftEvent("adwin", "setfit", promoted["version"], 0.1, 0.4, 900, 120)
    cluster.produce(topics.DRIFT, [(b"setfit", drift_again.to_json())])
    cluster.wait_for(topics.MODELS, lambda m: len(setfit_events(m)) >= 2, timeout_s=180)
    serving = registry.serving()
    assert serving is not None and serving != first.version
    probe = [(MOON.format(c=c) + " now", "bearish") for c in ["$NEAR", "$TIA", "$SUI", "$APT"]]
    texts, labels = [t for t, _ in probe], [y for _, y in probe]
    assert accuracy(SetfitTrainer(registry), serving, texts, labels) > accuracy(SetfitTrainer(registry), first.version, texts, labels)

    # And the workers moved on to the new model while scores kept flowing: the batch that notices the promotion
    # starts loading it in the background and is itself scored by the old model; later batches get the new one. A
    # drift job still queued from the flip may promote once more meanwhile (CI, 2026-11-27: 54 s after the version
    # probed above), so the workers must serve what serves now, whichever version that is, and not the first model.
    versions: set[str] = set()
    now: str | None = None
    for wave in range(6):
        later = posts(10_000 + 1000 * wave, flipped=True, rounds=1)
        cluster.produce(topics.POSTS, ((b"t", orjson.dumps({"id": i, "text": t})) for i, t, _ in later))
        want = {i for i, _, _ in later}
        messages = cluster.wait_for(topics.SCORES, lambda m, want=want: want <= set(scores_by_id(m)), timeout_s=120)
        versions = {scores_by_id(messages)[i]["analyzers"]["setfit"]["model_version"] for i in want}
        now = registry.serving()  # read once per wave: a promotion between the check and the assert is not a failure
        if versions == {now}:
            break
    assert versions == {now} and first.version not in versions
