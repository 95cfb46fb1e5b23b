"""A text-only sarcasm signal: a logistic-regression head on sentence embeddings (a body fine-tuned on sarcasm labels
when ``bizstream train sarcasm`` wrote one beside the head), trained on sarcasm labels.

It is the fallback signal where a post has no image to be incongruous with (see rules.py). The head is
numpy, stored in safetensors like the sentiment head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bizstream.settings import Settings


def default_head_path(settings: Settings) -> Path:
    """Where `bizstream train sarcasm` writes the head and the fuser looks for it by default."""
    return settings.broker.cache_path / "models" / "sarcasm" / "head.safetensors"


@dataclass(frozen=True)
class SarcasmHead:
    """P(sarcastic) = sigmoid(embedding · coef + intercept)."""

    coef: np.ndarray  # (dim,)
    intercept: float

    @classmethod
    def fit(cls, embeddings: np.ndarray, sarcastic: Sequence[bool], c: float = 1.0, seed: int = 42) -> SarcasmHead:
        """Fit with balanced class weights (sarcasm is the minority class)."""
        from sklearn.linear_model import LogisticRegression

        y = np.array([1 if s else 0 for s in sarcastic])
        if len(set(y.tolist())) < 2:
            raise ValueError("training a sarcasm head needs both sarcastic and not sarcastic examples")
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed).fit(embeddings, y)
        return cls(model.coef_[0].astype(np.float32), float(model.intercept_[0]))

    def deciding_at(self, threshold: float, at: float) -> SarcasmHead:
        """The same head with its intercept moved so that P(sarcastic) = ``at`` where it was ``threshold``: a decision
        threshold chosen for a base rate becomes the probability the sarcasm rules act on (ModalityWeights.invert_at)."""
        import math

        def logit(p: float) -> float:
            return math.log(p / (1 - p))

        return SarcasmHead(self.coef, self.intercept + logit(at) - logit(threshold))

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        """P(sarcastic) per row."""
        result: np.ndarray = 1.0 / (1.0 + np.exp(-(embeddings @ self.coef + self.intercept)))
        return result

    def save(self, path: Path) -> None:
        """safetensors."""
        from safetensors.numpy import save_file

        save_file({"coef": self.coef, "intercept": np.array([self.intercept], dtype=np.float32)}, str(path),
                  metadata={"kind": "sarcasm"})  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> SarcasmHead:
        """Read a head written by :meth:`save`."""
        from safetensors.numpy import load_file

        tensors = load_file(str(path))
        return cls(tensors["coef"], float(tensors["intercept"][0]))
