from __future__ import annotations

import random
import re

import pytest

from bizstream.learning.drift import AnalyzerVerdict, DriftMonitor, ErrorMonitor, ScoreJoin
from bizstream.records import Label, Sentiment


def test_no_alarm_before_a_known_change_and_detection_soon_after() -> None:
    rnd = random.Random(11)
    monitor = ErrorMonitor("vader", delta=0.002)
    events = []
    for i in range(6000):
        rate = 0.15 if i < 4000 else 0.45  # a 30-point jump at label 4000
        wrong = rnd.random() < rate
        event = monitor.update(wrong, 1.5 if wrong else 0.2, "v1")
        if event is not None:
            events.append((i, event))
    assert events, "the change was never detected"
    first, event = events[0]
    assert 4000 <= first <= 4300
    assert event.error_before < 0.2 < event.error_after
    assert event.abs_error_after is not None and 0.2 < event.abs_error_after < 1.5
    assert event.window_before + event.window_after == first + 1  # every label seen so far, split at the cut
    assert event.analyzer == "vader" and event.model_version == "v1" and "adwin" in event.detector


def test_bad_hyper_parameters_are_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="delta must be in"):
        ErrorMonitor("x", delta=0)
    with pytest.raises(ValueError, match="clock must be >= 1"):
        ErrorMonitor("x", clock=0)
    with pytest.raises(ValueError):
        ScoreJoin(max_posts=0)


def test_join_is_bounded_in_size_and_age() -> None:
    join = ScoreJoin(max_posts=3, ttl_s=100)
    result = [AnalyzerVerdict("vader", "v1", Sentiment.BULLISH, 0.8)]
    for i in range(5):
        join.add(f"p{i}", result, now=1000 + i)
    bull, bear = Sentiment.BULLISH, Sentiment.BEARISH
    assert len(join) == 3 and join.take("p0", bull, now=1005) is None  # evicted by size
    assert join.take("p4", bull, now=1005) == result
    assert join.take("p4", bull, now=1005) is None  # the same label again (delivered twice): joined once
    assert join.take("p4", bear, now=1005) == result  # a person's correction counts
    assert join.take("p2", bull, now=1200) is None  # expired


def test_monitor_joins_labels_to_earlier_scores_per_analyzer() -> None:
    monitor = DriftMonitor(min_labels=0)
    rnd = random.Random(3)
    drifted = []
    for i in range(3000):
        # vader is right 90% of the time, then (after 1500) only 40%; setfit stays right.
        vader_right = rnd.random() < (0.9 if i < 1500 else 0.4)
        monitor.on_score(f"p{i}", [
            AnalyzerVerdict("vader", "vader-1", Sentiment.BULLISH if vader_right else Sentiment.BEARISH, 0.7),
            AnalyzerVerdict("setfit", "s-1", Sentiment.BULLISH, 0.9),
        ])  # fmt: skip
        drifted += [(i, e.analyzer) for e in monitor.on_label(Label(f"p{i}", 3, "me"))]
    assert list(monitor.on_label(Label("never-scored", 3, "me"))) == []
    assert list(monitor.on_label(Label("p0", 3, "me"))) == []  # the same label again counts once
    assert {a for _, a in drifted} == {"vader"}
    assert all(i >= 1500 for i, _ in drifted)
    # What the monitor's log says: labels joined or passed over, and each analyzer's error rate in its window now.
    said = monitor.status()
    assert said.startswith("3000 labels joined to their post's score, 2 passed over"), said
    vader, setfit = (float(re.search(rf"{name} (\d\.\d\d) of \d+", said).group(1)) for name in ("vader", "setfit"))  # type: ignore[union-attr]
    assert 0.45 <= vader <= 0.75 and setfit == 0.0
