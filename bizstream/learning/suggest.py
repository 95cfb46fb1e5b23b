"""suggest(): which unlabelled scored posts a person should label next, in priority order, with what the serving model
believes of each now (the labeler shows it beside what each analyzer said when the post was scored).

Uncertainty is the learner's: the SetFit version that serves now (its head refits on every batch of labels) is asked
again about every candidate, through its trainer, rather than reading the probabilities each post was scored with,
which are as old as the post and fused with VADER. On the finance-tweet benchmark (bench/active_learning.py
--strategies hybrid random hybrid_stale, 10 seeds) uncertainty frozen at the first model gave 0.708 accuracy / 0.603
macro-F1 at 200 labels against 0.721 / 0.618, and 0.720 / 0.633 against 0.746 / 0.656 at 400. The scored
probabilities are used only when no SetFit version serves or it cannot answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bizstream.learning.acquisition import cold_start_acquisition, entropy_acquisition, hybrid_acquisition, random_acquisition
from bizstream.learning.embeddings import OnnxEncoder, TorchEncoder, default_body
from bizstream.learning.registry import ModelRegistry
from bizstream.records import SENTIMENTS
from bizstream.settings import Settings
from bizstream.store.labels import LabelStore
from bizstream.store.scored import ScoredPostStore

log = logging.getLogger(__name__)
STRATEGIES = ("hybrid", "entropy", "random")
COLD_START_LABELS = 30  # below this many human labels, hybrid asks for typical posts first (cold start)


class Beliefs:
    """Class probabilities already worked out for the candidate texts, served as a ProbabilisticModel over them."""

    def __init__(self, texts: Sequence[str], probabilities: np.ndarray) -> None:
        self.by_text = dict(zip(texts, np.asarray(probabilities, dtype=np.float64), strict=True))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities in SENTIMENTS order."""
        return np.array([self.by_text[t] for t in texts], dtype=np.float64)


LEARNER = "setfit"  # the analyzer whose uncertainty says what to label: the one every batch of labels refits


@dataclass(frozen=True)
class Suggestion:
    """A post to label, and what the learner's serving version believes of it now (None when it was not asked)."""

    post_id: str
    version: str | None = None
    now: dict[str, float] | None = None  # sentiment -> probability

    def belief(self) -> str | None:
        """In a few words, for the labeler: "bullish 71% (<version>)"."""
        if self.now is None:
            return None
        label = max(self.now.items(), key=lambda item: item[1])[0]
        return f"{label} {self.now[label]:.0%} ({self.version})"


def current_beliefs(settings: Settings, texts: Sequence[str]) -> tuple[str, np.ndarray] | None:
    """The learner's serving version and its (n, 3) probabilities for ``texts``, asked now through its trainer (the
    plugin's own way to run a version); None when no version serves or it cannot answer (said in the log)."""
    from bizstream.learning.trainers import load_trainers

    trainer = load_trainers(settings).get(LEARNER)
    if trainer is None:
        return None
    version = None
    try:
        trainer.load()  # with nothing serving yet, the starter is installed (as a worker or the trainer would)
        version = trainer.registry.serving()
        probabilities = trainer.predict_proba(version, texts)
    except Exception as exc:  # boundary: a missing or corrupt file (safetensors raises its own error), and so on
        log.warning("active learning falls back to the probabilities posts were scored with: %s %s: %s", LEARNER, version, exc)
        return None
    return None if version is None or probabilities is None else (version, probabilities)


def embedder(settings: Settings) -> Any:
    """The serving SetFit body (INT8 ONNX when exported), or the packaged MiniLM when nothing serves yet."""
    registry = ModelRegistry(settings.setfit_registry)
    version = registry.serving()
    if version is None:
        return TorchEncoder(default_body())
    body = registry.body_dir(registry.metadata(version).body_id)
    onnx = body / "onnx" / "model.int8.onnx"
    return OnnxEncoder(onnx, body / "tokenizer.json") if onnx.is_file() else TorchEncoder(body)


def suggest(
    settings: Settings, labeler: str, n: int = 50, strategy: str = "hybrid", pool: int = 2000, seed: int = 0
) -> list[Suggestion]:
    """Posts to label next, best first: never one already labelled (by anyone) or skipped by this labeler. Hybrid
    asks for typical posts of the pool (cold start) until there are COLD_START_LABELS human labels; entropy and hybrid
    after it ask the serving model about every candidate, and what it said comes with each suggestion."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    candidates = ScoredPostStore(LabelStore(settings.store_path)).unlabelled(labeler, pool)
    if not candidates:
        return []
    texts = [p.text for p in candidates]
    if strategy == "random":
        return [Suggestion(candidates[i].post_id) for i in random_acquisition(texts, n, seed)]
    if strategy == "hybrid" and LabelStore(settings.store_path).count() < COLD_START_LABELS:
        return [Suggestion(candidates[i].post_id) for i in cold_start_acquisition(embedder(settings).encode(texts), n, seed)]
    asked = current_beliefs(settings, texts)
    if asked is None:
        beliefs = np.array([[(p.probabilities or {}).get(c, 1 / 3) for c in SENTIMENTS] for p in candidates])
    else:
        beliefs = asked[1]
    model = Beliefs(texts, beliefs)
    if strategy == "entropy":
        order = entropy_acquisition(model, texts, n)
    else:
        order = hybrid_acquisition(model, texts, embedder(settings).encode(texts), n, seed)
    version = asked[0] if asked else None
    return [Suggestion(candidates[i].post_id, version, {c.value: round(float(p), 4) for c, p in zip(SENTIMENTS, beliefs[i], strict=True)}
                       if version else None) for i in order]  # fmt: skip
