"""The worker's progress line (issue 13, item 7): quiet by default, a line per N posts at info."""

from __future__ import annotations

import logging

import pytest

from bizstream.records import AnalyzerResult, Score
from bizstream.stream.worker import Progress


def score(i: int) -> Score:
    vader = AnalyzerResult("vader", "v", 0.5, score=0.5, label="bullish", confidence=0.6,  # type: ignore[arg-type]
                           probabilities={"bearish": 0.1, "neutral": 0.3, "bullish": 0.6})  # fmt: skip
    return Score(str(i), str(i), 0.5, "bullish", 0.6, {"bearish": 0.1, "neutral": 0.3, "bullish": 0.6}, {"vader": vader})  # type: ignore[arg-type]


def test_a_progress_line_every_n_posts(caplog: pytest.LogCaptureFixture) -> None:
    progress = Progress(every=100)
    with caplog.at_level(logging.INFO, logger="bizstream.stream.worker"):
        for batch in range(5):  # 60 posts a batch, 2 of them dead letters: lines after 120 and 240 posts
            progress.add(58, 2, [score(batch * 60 + i) for i in range(58)], seconds=0.5)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines == ["116 posts scored, 4 dead-lettered so far; 120 posts/s while busy; per post: vader 0.50 ms",
                     "232 posts scored, 8 dead-lettered so far; 120 posts/s while busy; per post: vader 0.50 ms"]  # fmt: skip
    caplog.clear()
    silent = Progress(every=0)
    with caplog.at_level(logging.INFO, logger="bizstream.stream.worker"):
        silent.add(10_000, 0, [], seconds=1.0)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]
