"""Drift detection on the live error stream: labels joined to the earlier scores of the same posts, fed to ADWIN.

For each label that arrives, the monitor looks up the Score it got earlier (kept in a bounded, time-limited join
table) and, for each analyzer in that Score, feeds river's ADWIN the 0/1 misclassification; it also tracks the mean
|score - truth| (truth: bearish -1, neutral 0, bullish +1) for the event. When ADWIN finds that the error rate
changed, a DriftEvent says which analyzer and model version, the error rate before and after, and the window sizes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from bizstream.records import DriftEvent, Label, Sentiment

TRUTH_SCORE = {Sentiment.BEARISH: -1.0, Sentiment.NEUTRAL: 0.0, Sentiment.BULLISH: 1.0}


@dataclass(frozen=True)
class AnalyzerVerdict:
    """What the join keeps of one analyzer's result for one post."""

    analyzer: str
    model_version: str
    label: Sentiment
    score: float


class ErrorMonitor:
    """ADWIN over one analyzer's error stream. Rejects bad hyper-parameters at construction."""

    def __init__(self, analyzer: str, delta: float = 0.002, min_labels: int = 100, clock: int = 32) -> None:
        if not 0.0 < delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if clock < 1:
            raise ValueError(f"clock must be >= 1, got {clock}")
        if min_labels < 0:
            raise ValueError(f"min_labels must be >= 0, got {min_labels}")
        from river.drift import ADWIN

        self.analyzer = analyzer
        self.delta = delta
        self.min_labels = min_labels
        self.clock = clock
        self.adwin = ADWIN(delta=delta, clock=clock)  # clock: check for change every `clock` labels
        self.abs_error = ADWIN(delta=delta, clock=clock)  # |score - truth|: reported with each event
        self.seen = 0

    def update(self, wrong: bool, abs_error: float, model_version: str) -> DriftEvent | None:
        """Feed one labelled outcome; a DriftEvent when the error rate has changed."""
        value = 1.0 if wrong else 0.0
        total_before = self.adwin.estimation * self.adwin.width + value
        width_before = self.adwin.width + 1
        self.adwin.update(value)
        self.abs_error.update(abs_error)
        self.seen += 1
        if not self.adwin.drift_detected or self.seen < self.min_labels:
            return None
        # ADWIN dropped the older part of its window: compare the error rate of what it dropped with what it kept.
        kept, kept_width = self.adwin.estimation * self.adwin.width, self.adwin.width
        dropped_width = max(1, width_before - kept_width)
        return DriftEvent(
            detector=f"adwin(delta={self.delta})",
            analyzer=self.analyzer,
            model_version=model_version,
            error_before=float((total_before - kept) / dropped_width),
            error_after=float(self.adwin.estimation),
            window_before=int(dropped_width),
            window_after=int(kept_width),
            abs_error_after=float(self.abs_error.estimation),
        )


class ScoreJoin:
    """Scores by post id, bounded in size and age (oldest evicted first), waiting for their labels."""

    def __init__(self, max_posts: int = 200_000, ttl_s: float = 7 * 24 * 3600) -> None:
        if max_posts < 1 or ttl_s <= 0:
            raise ValueError(f"max_posts must be >= 1 and ttl_s > 0, got {max_posts} and {ttl_s}")
        self.max_posts = max_posts
        self.ttl_s = ttl_s
        # post id -> (when scored, its results, the truth it was last joined with)
        self._scores: OrderedDict[str, tuple[float, list[AnalyzerVerdict], Sentiment | None]] = OrderedDict()

    def add(self, post_id: str, results: list[AnalyzerVerdict], now: float | None = None) -> None:
        """Remember a post's per-analyzer results (a later score of the same post replaces the earlier)."""
        now = time.time() if now is None else now
        self._scores.pop(post_id, None)
        self._scores[post_id] = (now, results, None)
        self._evict(now)

    def take(self, post_id: str, truth: Sentiment, now: float | None = None) -> list[AnalyzerVerdict] | None:
        """The results for a post labelled ``truth``, or None if never seen, expired, or already joined with this very
        truth (a label delivered twice counts once; a person's correction to another class counts again)."""
        now = time.time() if now is None else now
        self._evict(now)
        entry = self._scores.get(post_id)
        if entry is None or entry[2] is truth:
            return None
        self._scores[post_id] = (entry[0], entry[1], truth)
        return entry[1]

    def __len__(self) -> int:
        return len(self._scores)

    def _evict(self, now: float) -> None:
        while self._scores and (len(self._scores) > self.max_posts or next(iter(self._scores.values()))[0] < now - self.ttl_s):
            self._scores.popitem(last=False)


class DriftMonitor:
    """The join plus one ErrorMonitor per analyzer."""

    def __init__(self, delta: float = 0.002, min_labels: int = 100, join: ScoreJoin | None = None, clock: int = 32) -> None:
        self.delta = delta
        self.min_labels = min_labels
        self.clock = clock
        self.join = join or ScoreJoin()
        self.monitors: dict[str, ErrorMonitor] = {}
        self.joined = self.passed_over = 0  # labels joined to a score; labels with none remembered (or said again)

    def on_score(self, post_id: str, results: list[AnalyzerVerdict]) -> None:
        """Remember a scored post."""
        self.join.add(post_id, results)

    def on_label(self, label: Label) -> Iterator[DriftEvent]:
        """Join a label to its post's score and feed each analyzer's monitor; yields drift events."""
        results = self.join.take(label.post_id, label.sentiment)
        if results is None:
            self.passed_over += 1
            return
        self.joined += 1
        truth = label.sentiment
        for r in results:
            monitor = self.monitors.get(r.analyzer)
            if monitor is None:
                monitor = self.monitors[r.analyzer] = ErrorMonitor(r.analyzer, self.delta, self.min_labels, self.clock)
            event = monitor.update(r.label is not truth, abs(r.score - TRUTH_SCORE[truth]), r.model_version)
            if event is not None:
                yield event

    def status(self) -> str:
        """For the monitor's log: how many labels found their score, and each analyzer's error rate now."""
        errors = ", ".join(f"{name} {m.adwin.estimation:.2f} of {m.adwin.width:.0f}" for name, m in sorted(self.monitors.items()))
        return (f"{self.joined} labels joined to their post's score, {self.passed_over} passed over (no score of that "
                f"post remembered, or the same label again); error rate in ADWIN's window: {errors or '-'}")  # fmt: skip
