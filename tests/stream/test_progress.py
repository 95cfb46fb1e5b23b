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


def test_an_idle_worker_reports_the_posts_not_yet_reported_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    progress = Progress(every=1000, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="bizstream.stream.worker"):
        progress.add(405, 0, [score(i) for i in range(405)], seconds=0.5)  # a backlog under `every`, then nothing
        assert not caplog.records
        now[0] = 1.0
        progress.idle()  # a wait for posts came back empty
        progress.idle()  # said once
        lines = [r.getMessage() for r in caplog.records]
        assert lines == ["405 posts scored, 0 dead-lettered so far; 810 posts/s while busy; per post: vader 0.50 ms"]
        progress.add(1, 0, [score(405)], seconds=0.01)  # a trickle: the next idle line waits a minute after the last
        now[0] = 30.0
        progress.idle()
        assert len(caplog.records) == 1
        now[0] = 61.0
        progress.idle()
        assert caplog.records[-1].getMessage().startswith("406 posts scored") and len(caplog.records) == 2
        now[0] = 200.0
        progress.idle()  # nothing new since: nothing said
        assert len(caplog.records) == 2
