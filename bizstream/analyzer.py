"""The contract an analyzer implements, and the prediction it returns for each post."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bizstream.records import SENTIMENTS, Post, Sentiment


@dataclass(frozen=True)
class Prediction:
    """One analyzer's view of one post: score in [-1, +1], its label, confidence in [0, 1], class probabilities."""

    score: float
    label: Sentiment
    confidence: float
    probabilities: Mapping[str, float]

    def problem(self) -> str | None:
        """Why this prediction is unusable, or None when it is well-formed."""
        if not (isinstance(self.score, (int, float)) and math.isfinite(self.score) and -1.0 <= self.score <= 1.0):
            return f"score must be a finite number in [-1, +1], got {self.score!r}"
        if self.label not in SENTIMENTS:
            return f"label must be one of {[s.value for s in SENTIMENTS]}, got {self.label!r}"
        if not (isinstance(self.confidence, (int, float)) and 0.0 <= self.confidence <= 1.0):
            return f"confidence must be in [0, 1], got {self.confidence!r}"
        if set(self.probabilities) != {s.value for s in SENTIMENTS}:
            return f"probabilities must have exactly the keys bearish, neutral, bullish, got {sorted(self.probabilities)}"
        total = sum(self.probabilities.values())
        if not all(0.0 <= p <= 1.0 for p in self.probabilities.values()) or abs(total - 1.0) > 1e-3:
            return f"probabilities must be in [0, 1] and sum to 1, got {dict(self.probabilities)}"
        return None


@runtime_checkable
class Analyzer(Protocol):
    """Scores batches of posts. Plugins return these from the ``register_analyzers`` hook.

    ``name`` is unique across plugins (it keys fusion weights and the per-analyzer part of a Score); ``version``
    names the model version it serves. The host calls ``load()`` once at start-up — raise
    :class:`bizstream.errors.AnalyzerUnavailable` with the reason when it cannot run here — and then ``analyze()`` on
    each batch, from a worker thread, with a time budget. ``analyze`` returns one entry per post, in order; ``None``
    means "not applicable to this post" (e.g. an image analyzer on a text-only post).
    """

    name: str
    version: str

    def load(self) -> None:
        """Prepare to analyze (load weights); raise AnalyzerUnavailable when that is impossible here."""

    def analyze(self, posts: Sequence[Post]) -> Sequence[Prediction | None]:
        """One prediction (or None) per post, in the same order."""
