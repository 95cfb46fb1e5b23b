"""The SetFit head: refining a parent head with new labels."""

from __future__ import annotations

import numpy as np

from bizstream.records import SENTIMENTS
from bizstream_plugins.setfit.model import Head


def test_refine_learns_the_new_labels_and_keeps_what_the_parent_knew() -> None:
    rng = np.random.default_rng(0)
    centres = {"bearish": [-4.0, 0.0, 0.0], "neutral": [0.0, 0.0, 0.0], "bullish": [4.0, 0.0, 0.0]}

    def sample(n: int, shift: float = 0.0) -> tuple[np.ndarray, list[str]]:
        labels = [str(rng.choice(list(centres))) for _ in range(n)]
        points = np.array([np.array(centres[y]) + [0.0, shift * (y == "bullish"), 0.0] + rng.normal(0, 0.7, 3) for y in labels])
        return points.astype(np.float32), labels

    old_x, old_y = sample(3000)
    parent = Head.fit(old_x, old_y)
    # New labels: a handful, where bullish posts also moved along a new direction (new slang).
    new_x, new_y = sample(12, shift=5.0)
    test_old, test_old_y = sample(600)
    test_new, test_new_y = sample(600, shift=5.0)

    def accuracy(head: Head, x: np.ndarray, y: list[str]) -> float:
        return float(np.mean([SENTIMENTS[i].value == t for i, t in zip(head.predict_proba(x).argmax(axis=1), y, strict=True)]))

    refined, scratch = parent.refine(new_x, new_y, strength=1.0), Head.fit(new_x, new_y)
    assert accuracy(refined, test_old, test_old_y) >= accuracy(parent, test_old, test_old_y) - 0.03  # kept
    assert accuracy(refined, test_old, test_old_y) > accuracy(scratch, test_old, test_old_y)
    assert accuracy(refined, test_new, test_new_y) >= accuracy(parent, test_new, test_new_y)  # and learned
