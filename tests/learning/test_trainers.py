"""The one training path: a trainer trains, the host gates, promotes (or not) and says why."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bizstream.learning.dataset import Split
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.learning.trainers import Earned, Trainer, gate, load_trainers, train_candidate
from bizstream.settings import Settings

ROWS = {"bullish": [0.0, 0.0, 1.0], "bearish": [1.0, 0.0, 0.0], "neutral": [0.0, 1.0, 0.0]}


class Parrot:
    """Each version answers with one fixed class; the class of the next version is chosen by the test."""

    name = "parrot"

    def __init__(self, root: Path) -> None:
        self.registry = ModelRegistry(root, payload="says.txt")
        self.next_says = "bullish"
        self.says: dict[str, str] = {}

    def load(self) -> None:
        pass

    def train(self, split: Split, parent: str | None) -> ModelMetadata:
        staged = self.registry.staging()
        (staged / "says.txt").write_text(self.next_says)
        metadata = ModelMetadata(version=self.registry.new_version_id(), analyzer=self.name, body_id="", body_source="-",
                                 parent=parent, data_fingerprint=split.fingerprint(), metrics={"accuracy": 0.5},
                                 kind="parrot", params={})  # fmt: skip
        self.registry.add_version(staged, metadata)
        self.says[metadata.version] = self.next_says
        return metadata

    def predict_proba(self, version: str | None, texts: Sequence[str]) -> np.ndarray | None:
        if version is None:
            return None  # no model before the first version
        return np.array([ROWS[self.says[version]]] * len(texts))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings().replace(broker={"cache_dir": str(tmp_path / "cache")}, tracking={"enabled": False})


SPLIT = Split(["a", "b"], ["bullish", "bearish"], ["c"], ["bullish"])
SLICES = {"recent": (["x", "y", "z"], ["bullish", "bullish", "bearish"])}


def test_the_gate_promotes_what_is_not_worse_and_says_why(settings: Settings, tmp_path: Path) -> None:
    parrot = Parrot(tmp_path / "registry")
    assert isinstance(parrot, Trainer)
    first = train_candidate(settings, parrot, SPLIT, SLICES, {"recent": 0.0})
    assert first.promoted and parrot.registry.serving() == first.candidate.version
    assert (first.gate["recent_accuracy"], first.gate["recent_accuracy_serving"]) == (pytest.approx(2 / 3), 0.0)

    parrot.next_says = "bearish"  # 1/3 on the slice: worse than the bullish parrot's 2/3; on 3 posts no test can
    few = train_candidate(settings, parrot, SPLIT, SLICES, {"recent": 0.0})  # tell, so any drop counts
    assert not few.promoted and "on 3 posts (fewer than 30 posts, so any drop counts)" in few.why
    close = {"recent": (["x"] * 40, ["bullish"] * 21 + ["bearish"] * 19)}  # 19/40 against 21/40: noise
    noise = train_candidate(settings, parrot, SPLIT, close, {"recent": 0.0})
    assert noise.promoted and noise.gate["recent_p_worse"] > 0.3
    assert "recent: accuracy 0.475 against" in noise.summary() and "0.525 (lower, not significantly: sign test p=" in noise.summary()
    parrot.registry.promote(first.candidate.version)
    many = {"recent": (["x"] * 60, ["bullish"] * 40 + ["bearish"] * 20)}  # the same gap on 60 posts is not
    second = train_candidate(settings, parrot, SPLIT, many, {"recent": 0.0})
    assert not second.promoted and parrot.registry.serving() == first.candidate.version
    assert second.serving_before == first.candidate.version and second.candidate.parent == first.candidate.version
    assert second.why == "worse on recent 0.333 < serving 0.667 - margin 0.0 on 60 posts (p=0.00674)"
    summary = second.summary()
    assert "not promoted (worse on recent" in summary and f"{first.candidate.version} keeps serving" in summary
    # The decision stays beside each version, for `bizstream models list`.
    decision = parrot.registry.decision(first.candidate.version) or {}
    assert (decision["promoted"], decision["why"], decision["gate"]) == (True, first.why, first.gate)
    assert (parrot.registry.decision(second.candidate.version) or {})["promoted"] is False

    lenient = train_candidate(settings, parrot, SPLIT, many, {"recent": 0.5})  # a margin lets it through
    assert lenient.promoted and "0.667 (lower, within the gate's margin)" in lenient.summary()


def test_on_a_few_posts_of_the_holdout_only_a_significant_drop_blocks(settings: Settings, tmp_path: Path) -> None:
    # A label job's recent holdout posts are 10-odd: with any drop there counting, 10 of 30 head refits were rejected
    # on noise (bench/loop.py). The whole holdout decides; a part of it blocks only on a significant drop.
    parrot = Parrot(tmp_path / "registry")
    train_candidate(settings, parrot, SPLIT, SLICES, {"recent": 0.0})  # the bullish parrot serves
    parrot.next_says = "bearish"
    recent = (["r"] * 4, ["bullish"] * 3 + ["bearish"])  # 1/4 against 3/4 on 4 posts: p=0.31
    slices = {"recent": recent, "holdout": (["h"] * 40, ["bullish"] * 20 + ["bearish"] * 20)}  # level on all 40
    margins = {"recent": 0.0, "holdout": 0.0}
    assert not train_candidate(settings, parrot, SPLIT, slices, margins).promoted  # every slice decisive: noise blocks
    passed = train_candidate(settings, parrot, SPLIT, slices, margins, decisive="holdout")
    assert passed.promoted and passed.gate["recent_p_worse"] > 0.3, passed.why
    parrot.registry.promote(passed.serving_before or "")  # the bullish parrot again
    plain = {"recent": (["r"] * 6, ["bullish"] * 6), "holdout": slices["holdout"]}  # 0/6 against 6/6: p=0.016
    blocked = train_candidate(settings, parrot, SPLIT, plain, margins, decisive="holdout")
    assert not blocked.promoted and blocked.why == "worse on recent 0.000 < serving 1.000 - margin 0.0 on 6 posts (p=0.0156)"


def test_the_same_model_again_is_not_promoted_as_a_new_version(settings: Settings, tmp_path: Path) -> None:
    parrot = Parrot(tmp_path / "registry")
    first = train_candidate(settings, parrot, SPLIT, SLICES, {"recent": 0.0})
    again = train_candidate(settings, parrot, SPLIT, SLICES, {"recent": 0.0})  # bullish again: byte for byte the same
    assert not again.promoted and parrot.registry.serving() == first.candidate.version
    assert again.why == f"identical to {first.candidate.version}, which serves: the same labels gave the same model, nothing to promote"
    assert (parrot.registry.decision(again.candidate.version) or {})["promoted"] is False
    assert not again.event("manual").promoted


@pytest.mark.parametrize(("policy", "promoted_first", "promoted_second"),
                         [("always", True, True), ("never", False, False)])  # fmt: skip
def test_promotion_policies(settings: Settings, tmp_path: Path, policy: str, promoted_first: bool, promoted_second: bool) -> None:
    parrot = Parrot(tmp_path / "registry")
    first = train_candidate(settings, parrot, SPLIT, SLICES, {}, policy)  # type: ignore[arg-type]
    second = train_candidate(settings, parrot, SPLIT, SLICES, {}, policy)  # type: ignore[arg-type]
    assert (first.promoted, second.promoted) == (promoted_first, promoted_second)
    assert first.gate == {}  # nothing was compared


def test_the_builtin_plugins_contribute_the_setfit_and_cryptobert_trainers(settings: Settings) -> None:
    trainers = load_trainers(settings, third_party=False)
    assert sorted(trainers) == ["cryptobert", "setfit"]
    assert all(isinstance(t, Trainer) for t in trainers.values())
    assert trainers["setfit"].registry.root == settings.setfit_registry
    # The CryptoBERT trainer is built from the same option table as its analyzer (training keys included).
    custom = settings.replace(plugins={"options": {"cryptobert": {"epochs": 3, "lr": 1e-3, "onnx": False}}})
    crypto = load_trainers(custom, third_party=False)["cryptobert"]
    assert (crypto.epochs, crypto.lr, crypto.export) == (3, 1e-3, False)  # type: ignore[attr-defined]


def test_a_drift_job_may_lose_ground_on_earlier_labels_only_where_it_gained_on_recent_ones(tmp_path: Path) -> None:
    # A drift job that learned nothing new on the recent labels lost 14 points on the earlier ones and was promoted.
    parrot = Parrot(tmp_path / "registry")
    serving = parrot.train(SPLIT, None).version  # says bullish
    parrot.next_says = "bearish"
    candidate = parrot.train(SPLIT, serving).version
    earlier = ([f"e{i}" for i in range(400)], ["bullish"] * 220 + ["bearish"] * 180)  # candidate 0.10 lower, p = 0.03
    drift = {"recent": 0.0, "earlier": Earned("recent", margin=0.15, otherwise=0.0)}
    level = {"recent": (["r1", "r2", "r3", "r4"], ["bullish", "bullish", "bearish", "bearish"]), "earlier": earlier}
    metrics, worse = gate(parrot, candidate, serving, level, drift)
    assert metrics["recent_accuracy"] == metrics["recent_accuracy_serving"] == 0.5
    assert len(worse) == 1 and worse[0].startswith("earlier 0.450 < serving 0.550 - margin 0.0 on 400 posts")
    assert worse[0].endswith("it may lose up to 0.15 here only when more accurate on the recent labels")
    gained = {"recent": (["r1", "r2", "r3", "r4"], ["bullish", "bearish", "bearish", "bearish"]), "earlier": earlier}
    assert gate(parrot, candidate, serving, gained, drift)[1] == []  # it learned what changed: the drop is allowed
