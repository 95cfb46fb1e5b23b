"""The contract an analyzer implements, and the prediction it returns for each post."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bizstream.records import SENTIMENTS, Post, Score, Sentiment

Detail = str | float | bool


# How far a prediction's score and confidence may stray from what its probabilities say (float rounding).
TOLERANCE = 1e-3


@dataclass(frozen=True)
class Prediction:
    """One analyzer's view of one post: score in [-1, +1], its label, confidence in [0, 1], class probabilities.

    The three summaries are derived from the probabilities, always the same way (:meth:`from_probabilities`): the
    label is the most probable class, the score P(bullish) - P(bearish), the confidence the label's probability.
    Build predictions with it; :meth:`problem` rejects one whose parts disagree.

    ``details`` carries what else the analyzer read from the post, for fusers downstream (LLaVA: ``sarcastic``,
    ``ocr``, ``parsed``; VADER: ``compound``); it travels in the Score's per-analyzer results.
    """

    score: float
    label: Sentiment
    confidence: float
    probabilities: Mapping[str, float]
    details: Mapping[str, Detail] | None = None

    @classmethod
    def from_probabilities(
        cls, probabilities: Mapping[str, float] | Sequence[float], details: Mapping[str, Detail] | None = None
    ) -> Prediction:
        """The prediction that (bearish, neutral, bullish) probabilities stand for (a mapping or a row in that order).

        >>> p = Prediction.from_probabilities([0.1, 0.3, 0.6])
        >>> p.label, round(p.score, 2), p.confidence
        (<Sentiment.BULLISH: 'bullish'>, 0.5, 0.6)
        """
        if isinstance(probabilities, Mapping):
            bearish, neutral, bullish = probabilities[_BEARISH], probabilities[_NEUTRAL], probabilities[_BULLISH]
        else:
            bearish, neutral, bullish = probabilities
        bearish, neutral, bullish = float(bearish), float(neutral), float(bullish)
        label = _most_probable(bearish, neutral, bullish)
        confidence = neutral if label is Sentiment.NEUTRAL else bearish if label is Sentiment.BEARISH else bullish
        score = min(1.0, max(-1.0, bullish - bearish))
        return cls(score, label, confidence, {_BEARISH: bearish, _NEUTRAL: neutral, _BULLISH: bullish}, details)

    def problem(self) -> str | None:
        """Why this prediction is unusable, or None when it is well-formed and its parts agree."""
        if not (isinstance(self.score, (int, float)) and math.isfinite(self.score) and -1.0 <= self.score <= 1.0):
            return f"score must be a finite number in [-1, +1], got {self.score!r}"
        if self.label not in SENTIMENTS:
            return f"label must be one of {list(_KEYS)}, got {self.label!r}"
        if not (isinstance(self.confidence, (int, float)) and 0.0 <= self.confidence <= 1.0):
            return f"confidence must be in [0, 1], got {self.confidence!r}"
        if not isinstance(self.probabilities, Mapping) or self.probabilities.keys() != _KEY_SET:
            return f"probabilities must have exactly the keys bearish, neutral, bullish, got {sorted(self.probabilities)}"
        if self.details is not None and not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in self.details.items()
        ):
            return "details must map names to strings, numbers or booleans"
        return disagreement(self.score, self.label, self.confidence, self.probabilities)


def most_probable(probabilities: Mapping[str, float]) -> Sentiment:
    """The most probable class; a tie with neutral goes to neutral, one of bearish and bullish to bearish."""
    return _most_probable(*(probabilities[k] for k in _KEYS))


def score_of(probabilities: Mapping[str, float]) -> float:
    """P(bullish) - P(bearish), clipped to [-1, +1]."""
    return min(1.0, max(-1.0, probabilities[_BULLISH] - probabilities[_BEARISH]))


def has_opinion(probabilities: object) -> bool:
    """False for equal probabilities (OCR's, which reads and does not judge): the "label" of such a result is a tie's
    pick and says nothing, so neither the drift monitor nor the labeler should read it as a judgement."""
    if not isinstance(probabilities, Mapping) or not probabilities:
        return True
    values = [float(v) for v in probabilities.values()]
    return max(values) - min(values) > TOLERANCE


def disagreement(score: float, label: Sentiment, confidence: float, probabilities: Mapping[str, float]) -> str | None:
    """Why a score, label and confidence do not stand for these probabilities, or None when they do."""
    bearish, neutral, bullish = probabilities[_BEARISH], probabilities[_NEUTRAL], probabilities[_BULLISH]
    if not (
        isinstance(bearish, (int, float)) and isinstance(neutral, (int, float)) and isinstance(bullish, (int, float))
        and 0.0 <= bearish <= 1.0 and 0.0 <= neutral <= 1.0 and 0.0 <= bullish <= 1.0
        and abs(bearish + neutral + bullish - 1.0) <= TOLERANCE
    ):  # fmt: skip
        return f"probabilities must be in [0, 1] and sum to 1, got {dict(probabilities)}"
    of_label = probabilities[label]  # a Sentiment is its own name as a key
    if of_label < max(bearish, neutral, bullish) - TOLERANCE:
        return f"label {label} is not the most probable class of {dict(probabilities)}"
    expected = min(1.0, max(-1.0, bullish - bearish))
    if abs(score - expected) > TOLERANCE:
        return f"score {score:.4f} disagrees with the probabilities: P(bullish) - P(bearish) = {expected:.4f}"
    if abs(confidence - of_label) > TOLERANCE:
        return f"confidence {confidence:.4f} is not the probability of the label, {of_label:.4f}"
    return None


# Plain strings for the hot path: an enum member's .value is a descriptor call, and these run several times per post.
_KEYS: tuple[str, str, str] = tuple(s.value for s in SENTIMENTS)  # type: ignore[assignment]
_BEARISH, _NEUTRAL, _BULLISH = _KEYS
_KEY_SET = frozenset(_KEYS)


def _most_probable(bearish: float, neutral: float, bullish: float) -> Sentiment:
    if neutral >= bearish and neutral >= bullish:
        return Sentiment.NEUTRAL
    return Sentiment.BEARISH if bearish >= bullish else Sentiment.BULLISH


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
