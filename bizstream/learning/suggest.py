"""get_suggested_posts(): which unlabelled scored posts a person should label next, in priority order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bizstream.learning.acquisition import cold_start_acquisition, entropy_acquisition, hybrid_acquisition, random_acquisition
from bizstream.learning.embeddings import OnnxEncoder, TorchEncoder, default_body
from bizstream.learning.registry import ModelRegistry
from bizstream.records import SENTIMENTS
from bizstream.settings import Settings
from bizstream.store.labels import LabelStore
from bizstream.store.scored import PostForLabeling, ScoredPostStore

STRATEGIES = ("hybrid", "entropy", "random")
COLD_START_LABELS = 30  # below this many human labels, hybrid asks for typical posts first (cold start)


class StoredBeliefs:
    """The fused probabilities each post was scored with: what the running system believed about it."""

    def __init__(self, posts: Sequence[PostForLabeling]) -> None:
        self.by_text = {p.text: [(p.probabilities or {}).get(c, 1 / 3) for c in SENTIMENTS] for p in posts}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities in SENTIMENTS order."""
        return np.array([self.by_text[t] for t in texts], dtype=np.float64)


def embedder(settings: Settings) -> Any:
    """The serving SetFit body (INT8 ONNX when exported), or the packaged MiniLM when nothing serves yet."""
    registry = ModelRegistry(settings.setfit_registry)
    version = registry.serving()
    if version is None:
        return TorchEncoder(default_body())
    body = registry.body_dir(registry.metadata(version).body_id)
    onnx = body / "onnx" / "model.int8.onnx"
    return OnnxEncoder(onnx, body / "tokenizer.json") if onnx.is_file() else TorchEncoder(body)


def get_suggested_posts(
    settings: Settings, labeler: str, n: int = 50, strategy: str = "hybrid", pool: int = 2000, seed: int = 0
) -> list[str]:
    """Post ids to label next, best first: never one already labelled (by anyone) or skipped by this labeler. Hybrid
    asks for typical posts of the pool (cold start) until there are COLD_START_LABELS human labels."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    candidates = ScoredPostStore(LabelStore(settings.store_path)).unlabelled(labeler, pool)
    if not candidates:
        return []
    texts = [p.text for p in candidates]
    model = StoredBeliefs(candidates)
    if strategy == "random":
        order = random_acquisition(texts, n, seed)
    elif strategy == "entropy":
        order = entropy_acquisition(model, texts, n)
    elif LabelStore(settings.store_path).count() < COLD_START_LABELS:
        order = cold_start_acquisition(embedder(settings).encode(texts), n, seed)
    else:
        order = hybrid_acquisition(model, texts, embedder(settings).encode(texts), n, seed)
    return [candidates[i].post_id for i in order]
