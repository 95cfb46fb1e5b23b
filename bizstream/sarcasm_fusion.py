"""Multimodal fusion with sarcasm: text, image, thread context and the text read from the image (OCR) become one
score, and text that the evidence says is sarcastic counts with its sign inverted.

Sarcasm evidence, combined as a noisy OR of what is available:
- incongruity: the text and the image disagree strongly (|text_score - image_score| > 0.7), the meme says the
  opposite of the caption;
- the image model's own answer to "is this post sarcastic?" (LLaVA);
- the text-only sarcasm classifier (bizstream.learning.sarcasm), for posts without an image.
When sarcasm_probability reaches ``invert_at`` the text score is inverted before the weighted mean. Weights (text 0.5,
image 0.3, context 0.1, OCR 0.1 by default) are renormalised over the modalities present.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bizstream.records import Sentiment, label_for_score


@dataclass(frozen=True)
class FusionWeights:
    """Weights of each modality and the sarcasm rules; bad values are rejected at construction."""

    text: float = 0.5
    image: float = 0.3
    context: float = 0.1
    ocr: float = 0.1
    incongruity: float = 0.7  # |text - image| above this is incongruous
    incongruity_probability: float = 0.8  # how much an incongruity alone says "sarcastic"
    invert_at: float = 0.7  # sarcasm_probability from which the text score is inverted
    neutral_band: float = 0.05

    def __post_init__(self) -> None:
        for name in ("text", "image", "context", "ocr"):
            if getattr(self, name) < 0:
                raise ValueError(f"weight {name} must be >= 0, got {getattr(self, name)}")
        for name in ("incongruity", "incongruity_probability", "invert_at", "neutral_band"):
            if not 0 <= getattr(self, name) <= 2:
                raise ValueError(f"{name} out of range: {getattr(self, name)}")


@dataclass(frozen=True)
class Signals:
    """What the analyzers said about one post; None where a modality or signal is missing."""

    text: float | None = None  # text sentiment score in [-1, +1]
    image: float | None = None  # the image's sentiment toward the coin
    context: float | None = None  # e.g. the parent post's score
    ocr: float | None = None  # sentiment of the text read from the image
    image_sarcasm: float | None = None  # the image model's P(sarcastic)
    text_sarcasm: float | None = None  # the text-only classifier's P(sarcastic)


@dataclass(frozen=True)
class Fused:
    """One post's fused sentiment."""

    score: float
    label: Sentiment
    confidence: float
    sarcasm_probability: float
    inverted: bool
    used: dict[str, float] = field(default_factory=dict)  # modality -> weight actually applied


def sarcasm_probability(signals: Signals, weights: FusionWeights) -> float:
    """Noisy OR of the available sarcasm evidence (0 when there is none)."""
    evidence = []
    if signals.text is not None and signals.image is not None and abs(signals.text - signals.image) > weights.incongruity:
        evidence.append(weights.incongruity_probability)
    for p in (signals.image_sarcasm, signals.text_sarcasm):
        if p is not None:
            evidence.append(min(1.0, max(0.0, p)))
    not_sarcastic = 1.0
    for p in evidence:
        not_sarcastic *= 1.0 - p
    return 1.0 - not_sarcastic


def fuse(signals: Signals, weights: FusionWeights | None = None) -> Fused:
    """Weighted mean of the present modalities, text inverted when sarcasm is likely enough."""
    weights = weights or FusionWeights()
    sarcasm = sarcasm_probability(signals, weights)
    inverted = signals.text is not None and sarcasm >= weights.invert_at
    parts = {
        "text": (-signals.text if inverted else signals.text) if signals.text is not None else None,
        "image": signals.image,
        "context": signals.context,
        "ocr": signals.ocr,
    }
    used = {name: getattr(weights, name) for name, value in parts.items() if value is not None and getattr(weights, name) > 0}
    if not used:
        raise ValueError("nothing to fuse: no modality with a positive weight is present")
    total = sum(used.values())
    score = sum((parts[name] or 0.0) * w for name, w in used.items()) / total
    score = min(1.0, max(-1.0, score))
    label = label_for_score(score, weights.neutral_band)
    # Confidence: how far from the neutral band the score is, discounted where the modalities disagree.
    spread = max((abs(v - score) for v in parts.values() if v is not None), default=0.0)
    confidence = max(0.0, min(1.0, abs(score) if label is not Sentiment.NEUTRAL else 1 - abs(score))) * (1 - spread / 4)
    return Fused(score, label, confidence, sarcasm, inverted, {k: v / total for k, v in used.items()})
