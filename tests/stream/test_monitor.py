"""What the drift monitor takes from a Score: the analyzers that judged the post."""

from __future__ import annotations

from bizstream.records import AnalyzerResult, Score, Sentiment
from bizstream.stream.monitor import scored_results


def result(name: str, probabilities: dict[str, float] | None, error: str | None = None) -> AnalyzerResult:
    if probabilities is None:
        return AnalyzerResult(name, "v1", 1.0, error=error)
    label = Sentiment(max(probabilities, key=probabilities.__getitem__))
    return AnalyzerResult(name, "v1", 1.0, score=0.0, label=label, confidence=max(probabilities.values()),
                          probabilities=probabilities)  # fmt: skip


def test_only_analyzers_with_an_opinion_are_watched() -> None:
    third = 1 / 3
    score = Score("p1", "t1", 0.5, Sentiment.BULLISH, 0.7, {"bearish": 0.1, "neutral": 0.2, "bullish": 0.7}, {
        "vader": result("vader", {"bearish": 0.1, "neutral": 0.2, "bullish": 0.7}),
        "ocr": result("ocr", {"bearish": third, "neutral": third, "bullish": third}),  # reads, does not judge
        "setfit": result("setfit", None, error="timed out"),
    })  # fmt: skip
    post_id, verdicts = scored_results(score.to_json())
    assert post_id == "p1"
    assert [(v.analyzer, v.label) for v in verdicts] == [("vader", Sentiment.BULLISH)]
