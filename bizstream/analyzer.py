"""The contract an analyzer implements, and the prediction it returns for each post."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bizstream.records import SENTIMENTS, Post, Score, Sentiment

Detail = str | float | bool


@dataclass(frozen=True)
class Prediction:
    """One analyzer's view of one post: score in [-1, +1], its label, confidence in [0, 1], class probabilities.

    ``details`` carries what else the analyzer read from the post, for fusers downstream (LLaVA: ``sarcastic``,
    ``ocr``, ``parsed``); it travels in the Score's per-analyzer results.
    """

    score: float
    label: Sentiment
    confidence: float
    probabilities: Mapping[str, float]
    details: Mapping[str, Detail] | None = None

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
        if self.details is not None and not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in self.details.items()
        ):
            return "details must map names to strings, numbers or booleans"
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


@dataclass(frozen=True)
class Context:
    """What the pipeline knows around a post: the Score of the post it replies to, when this worker scored it."""

    parent: Score | None = None


@runtime_checkable
class Fuser(Protocol):
    """Refines fused Scores once every analyzer has spoken. Plugins return these from ``register_fusers``.

    ``refine`` gets a batch of (post, first-stage Score with every analyzer's result, context) and returns, per post,
    a replacement Score or ``None`` to keep the one it was given. Fusers run in order, after the analyzers, on the
    pipeline's thread: keep them cheap. One that raises costs only its own refinement (the Score records why).
    """

    name: str
    version: str

    def load(self) -> None:
        """Prepare; raise AnalyzerUnavailable when that is impossible here."""

    def refine(self, items: Sequence[tuple[Post, Score, Context]]) -> Sequence[Score | None]:
        """One replacement Score (or None) per item, in order."""
