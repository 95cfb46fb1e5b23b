from __future__ import annotations

import time

import pytest

from bizstream.analyzer import Prediction, disagreement
from bizstream.pipeline import Pipeline
from bizstream.records import Post, Sentiment
from bizstream.settings import FusionSettings, RoutingSettings
from tests.fixtures.analyzers import ConstantAnalyzer, HangingAnalyzer, RaisingAnalyzer, prediction

POSTS = [Post(id=str(i), text=f"post {i}", thread_id=f"t{i % 3}") for i in range(5)]


def test_fusion_uses_the_configured_weights() -> None:
    fusion = FusionSettings(weights={"up": 0.75, "down": 0.25})
    pipeline = Pipeline([ConstantAnalyzer("up", 1.0), ConstantAnalyzer("down", -1.0)], fusion, timeout_s=5)
    result = pipeline.process(POSTS)
    assert [s.post_id for s in result.scores] == [p.id for p in POSTS]
    for s in result.scores:
        assert s.score == pytest.approx(0.5)
        assert s.label is Sentiment.BULLISH
        assert s.probabilities["bullish"] == pytest.approx(0.75)
        assert s.thread_id == POSTS[int(s.post_id)].thread_id
        assert set(s.analyzers) == {"up", "down"}


def test_zero_weight_analyzer_is_reported_but_not_fused() -> None:
    fusion = FusionSettings(weights={"up": 1.0, "down": 0.0})
    pipeline = Pipeline([ConstantAnalyzer("up", 0.6), ConstantAnalyzer("down", -1.0)], fusion, timeout_s=5)
    s = pipeline.process(POSTS[:1]).scores[0]
    assert s.probabilities == s.analyzers["up"].probabilities  # "down" had no say
    assert s.analyzers["down"].score == -1.0


def test_a_raising_and_a_hanging_analyzer_cost_only_their_own_output() -> None:
    analyzers = [ConstantAnalyzer("ok", -0.5), RaisingAnalyzer("raiser", 1.0), HangingAnalyzer("hanger", 1.0, 2.0)]
    pipeline = Pipeline(analyzers, FusionSettings(), timeout_s=0.3)
    started = time.monotonic()
    result = pipeline.process(POSTS)
    assert time.monotonic() - started < 1.5  # bounded by the time budget, not by the hang
    assert len(result.scores) == len(POSTS) and not result.unscored
    for s in result.scores:
        assert s.probabilities == s.analyzers["ok"].probabilities  # the fusion is the healthy analyzer's alone
        assert "RuntimeError: boom" in s.failures["raiser"]
        assert "timed out" in s.failures["hanger"]
        assert "ok" not in s.failures
    # While the hung call is still running, the next batch skips that analyzer instead of piling up threads.
    again = pipeline.process(POSTS[:2])
    assert "still busy" in again.scores[0].failures["hanger"]
    pipeline.close()


def test_malformed_predictions_are_recorded_per_post() -> None:
    class Sloppy(ConstantAnalyzer):
        def analyze(self, posts):  # type: ignore[no-untyped-def]
            out = [prediction(0.5) for _ in posts]
            out[1] = Prediction(7.0, Sentiment.BULLISH, 1.0, out[0].probabilities)
            return out

    class Short(ConstantAnalyzer):
        def analyze(self, posts):  # type: ignore[no-untyped-def]
            return [prediction(0.5)]

    pipeline = Pipeline([Sloppy("sloppy", 0), Short("short", 0), ConstantAnalyzer("ok", 0.2)], FusionSettings(), 5)
    scores = pipeline.process(POSTS[:3]).scores
    assert "score must be a finite number in [-1, +1], got 7.0" in scores[1].failures["sloppy"]
    assert "sloppy" not in scores[0].failures
    assert all("returned 1 predictions for 3 posts" in s.failures["short"] for s in scores)


def test_post_no_analyzer_could_score_is_returned_unscored() -> None:
    pipeline = Pipeline([RaisingAnalyzer("raiser", 1.0)], FusionSettings(), timeout_s=5)
    result = pipeline.process(POSTS[:2])
    assert result.scores == []
    assert [u.post.id for u in result.unscored] == ["0", "1"]
    assert "raiser: RuntimeError: boom" in result.unscored[0].reason


def test_fused_label_score_and_probabilities_always_agree() -> None:
    from bizstream_plugins.vader.analyzer import VaderAnalyzer

    vader = VaderAnalyzer()
    vader.load()
    texts = ["moon", "rekt", "meh", "wagmi but fud", "what is this", "dump it all", "ok", "so bullish", "rug", "hi"]
    posts = [Post(id=str(i), text=t, thread_id="t") for i, t in enumerate(texts)]
    for a in (-1.0, -0.3, -0.05, 0.0, 0.04, 0.2, 1.0):
        pipeline = Pipeline([vader, ConstantAnalyzer("setfit", a)], FusionSettings(), 5)
        for s in pipeline.process(posts).scores:
            assert -1.0 <= s.score <= 1.0
            assert s.score == pytest.approx(s.probabilities["bullish"] - s.probabilities["bearish"])
            assert s.label.value == max(s.probabilities, key=s.probabilities.__getitem__)
            assert disagreement(s.score, s.label, s.confidence, s.probabilities) is None
            vader_p = s.analyzers["vader"].probabilities or {}
            assert s.probabilities["bullish"] == pytest.approx(0.3 * vader_p["bullish"] + 0.7 * max(a, 0.0))


def test_cascade_lets_confident_posts_skip_the_expensive_analyzer() -> None:
    class Cheap(ConstantAnalyzer):
        """Sure about posts mentioning 'moon', unsure about the rest."""

        def analyze(self, posts):  # type: ignore[no-untyped-def]
            return [prediction(0.9) if "moon" in p.text else Prediction.from_probabilities([0.3, 0.4, 0.3])
                    for p in posts]  # fmt: skip

    class Expensive(ConstantAnalyzer):
        seen: list[str] = []

        def analyze(self, posts):  # type: ignore[no-untyped-def]
            self.seen.extend(p.id for p in posts)
            return [prediction(-0.8) for _ in posts]

    posts = [Post(id="a", text="to the moon", thread_id="t"), Post(id="b", text="hmm", thread_id="t")]
    on = RoutingSettings(cascade=True, cheap=["vader"])
    expensive = Expensive("setfit", 0)
    result = Pipeline([Cheap("vader", 0), expensive], FusionSettings(), 5, on).process(posts)
    by_id = {s.post_id: s for s in result.scores}
    assert expensive.seen == ["b"]
    assert by_id["a"].route == "cheap" and set(by_id["a"].analyzers) == {"vader"} and by_id["a"].score == pytest.approx(0.9)
    assert by_id["b"].route == "escalated" and set(by_id["b"].analyzers) == {"vader", "setfit"}
    assert by_id["b"].probabilities["bearish"] == pytest.approx(0.3 * 0.3 + 0.7 * 0.8)

    expensive.seen.clear()
    off = RoutingSettings(cascade=False)
    result = Pipeline([Cheap("vader", 0), expensive], FusionSettings(), 5, off).process(posts)
    assert sorted(expensive.seen) == ["a", "b"]
    assert {s.route for s in result.scores} == {"all"}


class SlowOnSome(ConstantAnalyzer):
    """Quick, except on posts whose text says SLOW (a hostile post that costs ``seconds``)."""

    def __init__(self, name: str, score: float, seconds: float) -> None:
        super().__init__(name, score)
        self.seconds = seconds

    def analyze(self, posts):  # type: ignore[no-untyped-def]
        if any("SLOW" in p.text for p in posts):
            time.sleep(self.seconds)
        return [prediction(self.value) for _ in posts]


def test_one_expensive_post_costs_its_chunk_not_the_batch() -> None:
    posts = [Post(id=str(i), text="SLOW" if i == 20 else f"post {i}", thread_id="t") for i in range(64)]
    pipeline = Pipeline([SlowOnSome("only", 0.5, seconds=1.0)], FusionSettings(), timeout_s=0.6)
    result = pipeline.process(posts)
    unscored = sorted(int(u.post.id) for u in result.unscored)
    assert 20 in unscored and len(unscored) == 8  # the slow post's chunk of 8 (64 posts in 8 chunks)
    assert "timed out" in result.unscored[0].reason and "chunk of 8" in result.unscored[0].reason
    assert len(result.scores) == 56  # the posts before it, and those it held up (run again once it was done)
    assert len(pipeline.process(posts[:8]).scores) == 8  # the analyzer is free again
    pipeline.close()


def test_a_failed_analyzer_reports_its_own_time() -> None:
    pipeline = Pipeline([RaisingAnalyzer("raiser", 1.0), HangingAnalyzer("slow", 1.0, 0.4)], FusionSettings(), timeout_s=2.0)
    scores = pipeline.process(POSTS).scores
    assert len(scores) == len(POSTS)  # scored by the slow one
    # The raiser failed at once: not the 400 ms the batch waited for the other, shared out (80 ms a post).
    assert all(s.analyzers["raiser"].error and s.analyzers["raiser"].latency_ms < 50 for s in scores)
    assert all(s.analyzers["slow"].latency_ms >= 60 for s in scores)
    pipeline.close()
