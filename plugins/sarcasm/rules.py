"""Multimodal fusion with sarcasm: text, image, thread context and the text read from the image (OCR) become one
score, and text that the evidence says is sarcastic counts as what it means: praise read as blame.

Sarcasm evidence, combined as a noisy OR of what is available:
- incongruity: what the post says (its text, or the text written in its image) and what its image shows disagree
  strongly (|said - shown| > 0.7): "to the moon" over a crashing chart;
- the image model's own answer to "is this post sarcastic?" (LLaVA);
- the text-only sarcasm classifier (bizstream_plugins.sarcasm.model), for posts without an image.
When sarcasm_probability reaches ``invert_at`` what is said — the text and the OCR text — is inverted before the weighted
mean: its bullish probability moves to bearish (praise meant as blame), or its bearish probability to bullish where the
evidence is an image that shows a rise the words deny ("it's over" over a green chart). Sarcasm without such an image
is nearly always praise meant as blame: 110 of 120 sarcastic tweets in bench/data/isarcasmeval_sentiment.csv mean
something bearish, and swapping bearish and bullish on the text sarcasm model's word cost 4 points of sentiment
accuracy where this rule gains 2 (bench/inversion.py). Weights (text 0.5, image 0.3, context 0.1, OCR 0.1 by default) are renormalised over the modalities
present.

Each modality is a (bearish, neutral, bullish) probability triple, or a bare score s in [-1, +1] read as
(max(-s, 0), 1 - |s|, max(s, 0)). The mean is taken over the triples, so the fused label is the most probable class
and the fused score, P(bullish) - P(bearish), is the same weighted mean of the modalities' scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bizstream.analyzer import Prediction
from bizstream.records import Sentiment

Probs = tuple[float, float, float]  # bearish, neutral, bullish
Modality = float | Probs


def as_probs(value: Modality) -> Probs:
    """A modality as a probability triple (a bare score becomes the triple with that score)."""
    if isinstance(value, tuple):
        return value
    s = min(1.0, max(-1.0, float(value)))
    return (max(-s, 0.0), 1.0 - abs(s), max(s, 0.0))


def score_of(value: Modality) -> float:
    """P(bullish) - P(bearish)."""
    bearish, _, bullish = as_probs(value)
    return bullish - bearish


@dataclass(frozen=True)
class ModalityWeights:
    """Weights of each modality and the sarcasm rules; bad values are rejected at construction."""

    text: float = 0.5
    image: float = 0.3
    context: float = 0.1
    ocr: float = 0.1
    incongruity: float = 0.7  # |text - image| above this is incongruous
    incongruity_probability: float = 0.8  # how much an incongruity alone says "sarcastic"
    invert_at: float = 0.7  # sarcasm_probability from which the text score is inverted

    def __post_init__(self) -> None:
        for name in ("text", "image", "context", "ocr"):
            if getattr(self, name) < 0:
                raise ValueError(f"weight {name} must be >= 0, got {getattr(self, name)}")
        for name in ("incongruity", "incongruity_probability", "invert_at"):
            if not 0 <= getattr(self, name) <= 2:
                raise ValueError(f"{name} out of range: {getattr(self, name)}")


@dataclass(frozen=True)
class Signals:
    """What the analyzers said about one post; None where a modality or signal is missing."""

    text: Modality | None = None  # the text's sentiment
    image: Modality | None = None  # the image's sentiment toward the coin
    context: Modality | None = None  # e.g. the parent post's score
    ocr: Modality | None = None  # sentiment of the text read from the image
    image_sarcasm: float | None = None  # the image model's P(sarcastic)
    text_sarcasm: float | None = None  # the text-only classifier's P(sarcastic)


@dataclass(frozen=True)
class Fused:
    """One post's fused sentiment."""

    score: float
    label: Sentiment
    confidence: float  # the probability of the label
    probabilities: dict[str, float]
    sarcasm_probability: float
    inverted: bool
    used: dict[str, float] = field(default_factory=dict)  # modality -> weight actually applied


def incongruous(signals: Signals, weights: ModalityWeights) -> bool:
    """What the post says (text or caption) and what its image shows disagree by more than ``weights.incongruity``."""
    said = [s for s in (signals.text, signals.ocr) if s is not None]
    return signals.image is not None and any(abs(score_of(s) - score_of(signals.image)) > weights.incongruity for s in said)


def sarcasm_probability(signals: Signals, weights: ModalityWeights) -> float:
    """Noisy OR of the available sarcasm evidence (0 when there is none)."""
    evidence = []
    if incongruous(signals, weights):
        evidence.append(weights.incongruity_probability)
    for p in (signals.image_sarcasm, signals.text_sarcasm):
        if p is not None:
            evidence.append(min(1.0, max(0.0, p)))
    not_sarcastic = 1.0
    for p in evidence:
        not_sarcastic *= 1.0 - p
    return 1.0 - not_sarcastic


def fuse(signals: Signals, weights: ModalityWeights | None = None) -> Fused:
    """Weighted mean of the present modalities' probabilities, the text inverted when sarcasm is likely enough."""
    weights = weights or ModalityWeights()
    sarcasm = sarcasm_probability(signals, weights)
    inverted = (signals.text is not None or signals.ocr is not None) and sarcasm >= weights.invert_at
    parts: dict[str, Probs] = {}
    for name in ("text", "image", "context", "ocr"):
        value = getattr(signals, name)
        if value is not None and getattr(weights, name) > 0:
            parts[name] = as_probs(value)
    if not parts:
        raise ValueError("nothing to fuse: no modality with a positive weight is present")
    if inverted:
        praise = signals.image is not None and score_of(signals.image) > 0 and incongruous(signals, weights)
        for name in ("text", "ocr"):
            if name in parts:
                bearish, neutral, bullish = parts[name]
                parts[name] = (0.0, neutral, bearish + bullish) if praise else (bearish + bullish, neutral, 0.0)
    total = sum(getattr(weights, name) for name in parts)
    used = {name: getattr(weights, name) / total for name in parts}
    mean = [sum(parts[name][k] * w for name, w in used.items()) for k in range(3)]
    p = Prediction.from_probabilities(mean)
    return Fused(p.score, p.label, p.confidence, dict(p.probabilities), sarcasm, inverted, used)
