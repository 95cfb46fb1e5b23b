"""What a model learns from and is judged on: a split of labelled texts, and the metrics every model reports.

Class columns follow :data:`bizstream.records.SENTIMENTS` (bearish, neutral, bullish) everywhere; label names are
their values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bizstream.records import SENTIMENTS


@dataclass(frozen=True)
class Split:
    """Texts and label names for training and for the held-back evaluation."""

    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]
    train_weights: list[float] | None = None  # per training example (the head honours them; default: equal)

    @classmethod
    def from_dataset(cls, data: Any) -> Split:
        """From the DatasetDict that LabelStore.dataset() returns."""
        names = data["train"].features["label"].names
        return cls(
            list(data["train"]["text"]), [names[i] for i in data["train"]["label"]],
            list(data["test"]["text"]), [names[i] for i in data["test"]["label"]],
        )  # fmt: skip

    @classmethod
    def on_holdout(cls, rows: Sequence[Any], share: float) -> Split:
        """Train on every row outside the evaluation holdout (:func:`in_holdout`), test on the holdout. ``rows`` have
        post_id, text and sentiment (store.labels.LabelRow). ValueError saying what to do when either side would be
        unusable."""
        train = [r for r in rows if not in_holdout(r.post_id, share)]
        test = [r for r in rows if in_holdout(r.post_id, share)]
        if not test or len({r.sentiment for r in train}) < 2:
            raise ValueError(
                f"{len(rows)} labelled posts give {len(train)} to train on ({len({r.sentiment for r in train})} classes) and "
                f"{len(test)} in the evaluation holdout; label more posts (at least 2 classes to train on, and a holdout)"
            )
        return cls([r.text for r in train], [r.sentiment for r in train], [r.text for r in test], [r.sentiment for r in test])

    def fingerprint(self) -> str:
        """A hash of the training data, recorded with the model."""
        digest = hashlib.sha256()
        for text, label in sorted(zip(self.train_texts, self.train_labels, strict=True)):
            digest.update(text.encode() + b"\0" + label.encode() + b"\n")
        return "sha256:" + digest.hexdigest()[:16]


def in_holdout(post_id: str, share: float) -> bool:
    """Whether a labelled post belongs to the evaluation holdout. Decided by a hash of its id alone, so membership never
    changes, the holdout grows with the labels (about ``share`` of them, of every class alike in expectation), and the
    retraining job never trains on it."""
    return int.from_bytes(hashlib.sha256(post_id.encode()).digest()[:8], "big") < share * 2**64


def classification_metrics(probabilities: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 of (n, 3) probabilities (columns in SENTIMENTS order) against label names."""
    from sklearn.metrics import f1_score

    predicted = [SENTIMENTS[i].value for i in np.asarray(probabilities).argmax(axis=1)] if len(labels) else []
    accuracy = float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)])) if len(labels) else 0.0
    macro_f1 = float(f1_score(list(labels), predicted, labels=[s.value for s in SENTIMENTS], average="macro",
                              zero_division=0)) if len(labels) else 0.0  # fmt: skip
    return {"accuracy": accuracy, "macro_f1": macro_f1, "eval_examples": float(len(labels))}
