"""FixMatch-style pseudo-labels: confident predictions on a weak view of unlabelled posts, learned from a strong view.

The weak view is the post's text as it is; the serving model's prediction on it becomes a pseudo-label when its
confidence reaches the threshold (0.95 by default). The training example is a strong augmentation of the same text
(random token dropout and swaps of neighbouring tokens) with that label, so the model learns to give the same
answer when the wording is disturbed, not just to repeat itself.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bizstream.records import SENTIMENTS


@dataclass(frozen=True)
class PseudoLabel:
    """A confident prediction turned into a training example."""

    post_id: str
    text: str  # the strong view
    label: str
    confidence: float


def strong_view(text: str, rnd: random.Random, drop: float = 0.15, swaps: int = 1) -> str:
    """Token dropout plus swaps of neighbouring tokens; never returns an empty text."""
    tokens = text.split()
    kept = [t for t in tokens if rnd.random() >= drop] or tokens[:1]
    for _ in range(swaps):
        if len(kept) > 2:
            i = rnd.randrange(len(kept) - 1)
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
    return " ".join(kept)


def pseudo_label(
    posts: Sequence[tuple[str, str]], probabilities: np.ndarray, threshold: float, limit: int, seed: int
) -> list[PseudoLabel]:
    """The most confident predictions at or above ``threshold`` (at most ``limit``), as strong-view examples."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    confidence = probabilities.max(axis=1)
    order = [i for i in np.argsort(-confidence, kind="stable") if confidence[i] >= threshold][: max(0, limit)]
    rnd = random.Random(seed)
    return [
        PseudoLabel(posts[i][0], strong_view(posts[i][1], rnd), SENTIMENTS[int(probabilities[i].argmax())].value, float(confidence[i]))
        for i in order
    ]
