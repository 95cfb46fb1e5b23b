"""Learned fusion: it learns whom to trust from held-back labels, calibrates itself, is gated, versioned and served."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np
import pytest

from bizstream.analyzer import Prediction
from bizstream.learning.dataset import in_holdout
from bizstream.learning.fusion import (
    FIXED,
    ServedFusion,
    UpToDate,
    expected_calibration_error,
    fit_fusion,
    fusion_registry,
    load_fusion,
    save_fusion,
    train_fusion,
)
from bizstream.learning.registry import RegistryError
from bizstream.pipeline import Pipeline
from bizstream.records import SENTIMENTS, AnalyzerResult, Post, Sentiment
from bizstream.settings import FusionSettings, Settings
from bizstream.store.labels import LabelRow, LabelStore

CLASSES = [s.value for s in SENTIMENTS]


class Oracle:
    """Reads the truth hidden in a post's text ("truth=bullish") and is right with probability ``accuracy``,
    always ``confidence`` sure of itself (so when accuracy < confidence it is overconfident)."""

    version = "oracle-1"

    def __init__(self, name: str, accuracy: float, confidence: float = 0.9) -> None:
        self.name, self.accuracy, self.confidence = name, accuracy, confidence

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        """A prediction per post, right or wrong by a hash of the post's id (the same post, the same answer)."""
        out: list[Prediction | None] = []
        for post in posts:
            truth = post.text.split("truth=")[1].split()[0]
            rnd = random.Random(f"{self.name}:{post.id}")
            said = truth if rnd.random() < self.accuracy else rnd.choice([c for c in CLASSES if c != truth])
            rest = (1 - self.confidence) / 2
            out.append(Prediction.from_probabilities({c: self.confidence if c == said else rest for c in CLASSES}))
        return out


def results_for(analyzers: Sequence[Oracle], posts: Sequence[Post]) -> list[dict[str, AnalyzerResult | None]]:
    per_analyzer = {a.name: a.analyze(posts) for a in analyzers}
    return [{name: AnalyzerResult(name, "1", 0.0, probabilities=dict(p[i].probabilities))  # type: ignore[union-attr]
             for name, p in per_analyzer.items()} for i in range(len(posts))]  # fmt: skip


def labelled_posts(n: int, seed: int = 0) -> tuple[list[Post], list[str]]:
    rnd = random.Random(seed)
    labels = [rnd.choice(CLASSES) for _ in range(n)]
    return [Post(id=f"p{seed}-{i}", text=f"post truth={label}", thread_id="t") for i, label in enumerate(labels)], labels


def accuracy(probabilities: np.ndarray, labels: Sequence[str]) -> float:
    return float(np.mean(np.asarray(probabilities).argmax(axis=1) == np.array([CLASSES.index(y) for y in labels])))


def test_it_learns_whom_to_trust_and_calibrates() -> None:
    good, noisy = Oracle("good", 0.8, confidence=0.98), Oracle("noisy", 0.4, confidence=0.98)
    posts, labels = labelled_posts(300)
    fitted = fit_fusion(results_for([good, noisy], posts), labels, ["good", "noisy"])
    weights = dict(zip(fitted.fusion.analyzers, fitted.fusion.weights, strict=True))
    assert fitted.what == "alone:good" or weights["good"] > 3 * weights["noisy"]  # trusts the good one
    # On new posts: as accurate as the good analyzer alone, better than equal weights, and far better calibrated
    # than the overconfident analyzers themselves.
    new_posts, new_labels = labelled_posts(600, seed=1)
    new_results = results_for([good, noisy], new_posts)
    learned = fitted.fusion.predict_proba(fitted.fusion.features(new_results))
    good_alone = np.array([[r["good"].probabilities[c] for c in CLASSES] for r in new_results])  # type: ignore[union-attr,index]
    equal = (good_alone + np.array([[r["noisy"].probabilities[c] for c in CLASSES] for r in new_results])) / 2  # type: ignore[union-attr,index]
    assert accuracy(learned, new_labels) >= accuracy(good_alone, new_labels) - 0.01
    assert accuracy(learned, new_labels) > accuracy(equal, new_labels) + 0.05
    assert expected_calibration_error(good_alone, new_labels) > 0.15
    assert expected_calibration_error(learned, new_labels) < 0.06


def test_complementary_analyzers_are_pooled() -> None:
    trio = [Oracle(name, 0.6, confidence=0.6) for name in "abc"]  # each right 60% of the time, independently
    posts, labels = labelled_posts(400)
    fitted = fit_fusion(results_for(trio, posts), labels, ["a", "b", "c"])
    assert fitted.what == "pool"
    new_posts, new_labels = labelled_posts(800, seed=5)
    new_results = results_for(trio, new_posts)
    pooled = accuracy(fitted.fusion.predict_proba(fitted.fusion.features(new_results)), new_labels)
    alone = [accuracy(np.array([[r[n].probabilities[c] for c in CLASSES] for r in new_results]), new_labels) for n in "abc"]  # type: ignore[union-attr,index]
    assert pooled > max(alone) + 0.02


def test_the_incumbent_stays_without_evidence_and_goes_with_it() -> None:
    # 12 held-back posts cannot tell a 0.6 analyzer from a 0.8 one: the incumbent (what the weights trust) stays.
    good, fair = Oracle("good", 0.8, confidence=0.7), Oracle("fair", 0.6, confidence=0.7)
    posts, labels = labelled_posts(12, seed=3)
    assert fit_fusion(results_for([good, fair], posts), labels, ["good", "fair"], incumbent="fair").what == "alone:fair"
    assert fit_fusion(results_for([good, fair], posts), labels, ["good", "fair"], incumbent="good").what == "alone:good"
    # A pooled fusion that serves is an incumbent too: the choice does not flip back and forth from job to job.
    assert fit_fusion(results_for([good, fair], posts), labels, ["good", "fair"], incumbent="pool").what == "pool"
    # 300 posts can: the better one (alone or pooled) replaces a weak incumbent.
    posts, labels = labelled_posts(300, seed=4)
    assert fit_fusion(results_for([good, fair], posts), labels, ["good", "fair"], incumbent="fair").what != "alone:fair"


def test_expected_calibration_error() -> None:
    labels = ["bullish"] * 8 + ["bearish"] * 2
    sure = np.tile([0.0, 0.0, 1.0], (10, 1))  # always 100 % sure of bullish, right 80 % of the time
    assert expected_calibration_error(sure, labels) == pytest.approx(0.2)
    honest = np.tile([0.2, 0.0, 0.8], (10, 1))
    assert expected_calibration_error(honest, labels) == pytest.approx(0.0)


def test_too_few_classes_is_a_clear_error() -> None:
    posts, _ = labelled_posts(10)
    with pytest.raises(ValueError, match="need at least 2 classes"):
        fit_fusion(results_for([Oracle("a", 0.9)], posts), ["bullish"] * 10, ["a"])


def test_a_version_is_checked_before_it_serves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    posts, labels = labelled_posts(60)
    registry = fusion_registry(tmp_path)
    fitted = fit_fusion(results_for([Oracle("a", 0.8)], posts), labels, ["a"], version=registry.new_version_id())
    saved = save_fusion(registry, fitted.fusion, None, {"accuracy": 0.8}, "sha256:x")
    served = ServedFusion(registry)
    assert served() is None  # nothing promoted: the fixed weights fuse
    registry.promote(saved.version)
    loaded = served()
    assert loaded is not None and loaded.version == saved.version
    assert np.allclose(loaded.weights, fitted.fusion.weights) and loaded.temperature == fitted.fusion.temperature
    # An altered payload is refused (and the one already serving keeps serving).
    payload = registry.version_dir(saved.version) / "fusion.json"
    payload.write_text(payload.read_text().replace('"temperature"', '"temperature" ', 1))
    with pytest.raises(RegistryError, match="sha256"):
        load_fusion(registry, saved.version)


def test_the_pipeline_serves_the_learned_fusion_and_says_so() -> None:
    posts, labels = labelled_posts(200)
    good, noisy = Oracle("good", 0.85), Oracle("noisy", 0.34)
    fitted = fit_fusion(results_for([good, noisy], posts), labels, ["good", "noisy"], version="v-test")
    # Equal fixed weights: the noisy analyzer drags the fusion down until the learned one serves.
    fixed = Pipeline([good, noisy], FusionSettings(weights={}), timeout_s=5)
    learned = Pipeline([good, noisy], FusionSettings(weights={}), timeout_s=5, fusion_source=lambda: fitted.fusion)
    new_posts, new_labels = labelled_posts(300, seed=2)
    by_fixed, by_learned = fixed.process(new_posts).scores, learned.process(new_posts).scores
    assert {s.fusion for s in by_fixed} == {FIXED} and {s.fusion for s in by_learned} == {"v-test"}
    right = [sum(s.label.value == y for s, y in zip(scores, new_labels, strict=True)) for scores in (by_fixed, by_learned)]
    assert right[1] > right[0] + 15
    for s in by_learned:  # the learned fusion's probabilities are the Score's, consistent with its label and score
        assert s.score == pytest.approx(s.probabilities["bullish"] - s.probabilities["bearish"])
    # A post none of its analyzers scored falls back to the fixed weights.
    other = Pipeline([Oracle("other", 0.9)], FusionSettings(), timeout_s=5, fusion_source=lambda: fitted.fusion)
    assert {s.fusion for s in other.process(new_posts[:5]).scores} == {FIXED}
    for pipeline in (fixed, learned, other):
        pipeline.close()


def store_labels(settings: Settings, posts: Sequence[Post], labels: Sequence[str], at: float | None = None) -> None:
    LabelStore(settings.store_path).add([LabelRow(p.id, p.text, Sentiment(y).rating, "tester", p.thread_id, labeled_at=at or time.time())
                                         for p, y in zip(posts, labels, strict=True)])  # fmt: skip


def test_the_job_fits_gates_and_promotes_a_fusion(settings: Settings) -> None:
    settings = settings.replace(trainer={"eval_share": 0.5}, fusion={"weights": {}, "min_labels": 30})
    pipeline = Pipeline([Oracle("good", 0.85), Oracle("noisy", 0.34)], settings.fusion, timeout_s=5)
    posts, labels = labelled_posts(40, seed=3)
    store_labels(settings, posts[:20], labels[:20])
    assert "fusion.min_labels=30" in str(train_fusion(settings, pipeline))  # too few held-back labels yet
    store_labels(settings, posts, labels)
    posts, labels = labelled_posts(200, seed=4)
    store_labels(settings, posts, labels)
    first = train_fusion(settings, pipeline)
    assert not isinstance(first, str)
    assert first.promoted and first.serving_before is None, first.why
    assert "not worse than the fixed weights" in first.why
    assert first.gate["holdout_accuracy"] > first.gate["holdout_accuracy_serving"]
    registry = fusion_registry(settings.fusion_registry)
    assert registry.serving() == first.candidate.version
    assert registry.decision(first.candidate.version)["promoted"] is True  # type: ignore[index]
    m = first.candidate.metrics
    assert m["ece"] <= m["ece_baseline"] + 0.02 and m["eval_examples"] >= 30
    # Nothing new (no labels, the same models): no copy of it is fitted, promoted and announced.
    again = train_fusion(settings, pipeline)
    assert isinstance(again, UpToDate) and again.startswith(f"{first.candidate.version} keeps fusing")
    # With new labels, the next one is compared with the one serving now, and says so; new as they came, whatever
    # their labeler's clock said (these were given a year ago, somewhere else).
    posts, labels = labelled_posts(60, seed=5)
    store_labels(settings, posts, labels, at=time.time() - 365 * 86_400)
    second = train_fusion(settings, pipeline)
    assert not isinstance(second, str) and second.serving_before == first.candidate.version
    # Compared where neither was fitted: the serving fusion only on the held-back labels that came after it.
    since = [p for p in posts if in_holdout(p.id, 0.5)]
    assert second.gate["holdout_examples"] == len(since) > 0 and second.gate["holdout_examples"] < second.candidate.metrics["eval_examples"]
    assert f"on {len(since)} held-back posts labelled since {first.candidate.version}" in second.why
    pipeline.close()


def test_the_fusion_gate_refuses_an_as_accurate_but_worse_calibrated_fusion() -> None:
    from bizstream.learning.fusion import fusion_gate

    rng = np.random.default_rng(0)
    labels = [("bearish", "neutral", "bullish")[i % 3] for i in range(90)]
    truth = np.array([i % 3 for i in range(90)])
    right = rng.random(90) < 0.7  # both right on the same 70% of posts
    guess = np.where(right, truth, (truth + 1) % 3)

    def probabilities(peak: float) -> np.ndarray:
        p = np.full((90, 3), (1 - peak) / 2)
        p[np.arange(90), guess] = peak
        return p

    honest, overconfident = probabilities(0.7), probabilities(0.99)
    gate, worse = fusion_gate(overconfident, honest, labels, margin=0.0)
    assert gate["holdout_accuracy"] == gate["holdout_accuracy_serving"] and worse is not None and "calibration" in worse
    assert fusion_gate(honest, overconfident, labels, margin=0.0)[1] is None  # better calibrated: not worse
