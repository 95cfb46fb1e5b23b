"""Training the SetFit model: a full contrastive fine-tune of the body, or the fast path that refits only the head.

Measured on the 2-core machine: a full fine-tune of MiniLM on 192 labels (1 epoch, 20 iterations) takes ~14 minutes,
so the fast path exists: embeddings of every text the body has seen are cached (per body, in SQLite), and refitting
the logistic-regression head on them takes seconds, so new labels reach the served model within a minute while
full fine-tunes run less often.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bizstream.learning.dataset import Split, classification_metrics
from bizstream.learning.embeddings import EmbeddingCache, TorchEncoder, default_body, fine_tune
from bizstream.learning.registry import ModelMetadata, ModelRegistry, RegistryError
from bizstream.records import SENTIMENTS
from bizstream_plugins.setfit.model import Head

log = logging.getLogger(__name__)
HEAD = "head.safetensors"
ANCHOR = "anchor.safetensors"  # the prior a chain of head refits is held near (see anchor())


@dataclass(frozen=True)
class TrainProfile:
    """SetFit's contrastive-phase hyper-parameters."""

    batch_size: int
    num_epochs: int
    num_iterations: int


PROFILES: dict[str, TrainProfile] = {
    "seed": TrainProfile(batch_size=16, num_epochs=4, num_iterations=20),  # the seed project's settings (GPU-sized)
    "cpu": TrainProfile(batch_size=16, num_epochs=1, num_iterations=5),  # a 2-core machine: minutes, not hours
}


def train_full(
    registry: ModelRegistry,
    split: Split,
    body_source: str | Path,
    profile: TrainProfile,
    seed: int = 42,
    max_seq_length: int = 128,
    parent: str | None = None,
    show_progress: bool = True,
    device: str = "cpu",
) -> ModelMetadata:
    """Fine-tune the body contrastively (SetFit), fit the head, evaluate, and add a new version to the registry."""
    started = time.monotonic()
    encoder = TorchEncoder(body_source, max_seq_length=max_seq_length, device=device)
    fine_tune(encoder, split.train_texts, [SENTIMENTS.index(label) for label in split.train_labels], profile.batch_size,
              profile.num_epochs, profile.num_iterations, seed, show_progress, max_seq_length)  # fmt: skip

    version = registry.new_version_id()
    body_id = f"body-{version}"
    staged_body = registry.staging()
    encoder.model.save(str(staged_body), safe_serialization=True)
    body_dir = registry.add_body(staged_body, body_id)
    return _finish(registry, split, encoder, body_dir, body_id, str(body_source), version, parent, "full", started,
                   {"profile": profile.__dict__, "seed": seed, "max_seq_length": max_seq_length, "device": device})  # fmt: skip


def refit_head(
    registry: ModelRegistry, split: Split, parent: str | None = None, seed: int = 42, prior_strength: float = 1.0
) -> ModelMetadata:  # fmt: skip
    """The fast path: keep the parent's body (default: the serving version's), refit the head on cached embeddings,
    held near a prior head (``prior_strength``; 0: from scratch, forgetting what the parent knew): the starter's when
    the parent descends from it by head refits (see :func:`anchor`), else the parent's."""
    parent = parent or registry.serving()
    if parent is None:
        raise RegistryError("the head-only refit needs a parent model; train a full model first (bizstream train setfit)")
    base = registry.metadata(parent)
    started = time.monotonic()
    body_dir = registry.body_dir(base.body_id)
    encoder = TorchEncoder(body_dir, max_seq_length=int(base.params.get("max_seq_length", 128)), lazy=True)
    kept = anchor(registry, parent) if prior_strength > 0 else None
    prior = kept or (Head.load(registry.version_dir(parent) / HEAD) if prior_strength > 0 else None)
    return _finish(registry, split, encoder, body_dir, base.body_id, base.body_source, registry.new_version_id(),
                   parent, "head", started, {"seed": seed, "max_seq_length": base.params.get("max_seq_length", 128),
                                             "prior_strength": prior_strength}, prior, kept)  # fmt: skip


def anchor(registry: ModelRegistry, version: str) -> Head | None:
    """The head that a refit of ``version``'s head is held near when it descends, by head refits, from one learned on
    examples the labels here do not include (the starter's public examples): that head, which every such version
    carries as ``anchor.safetensors``. None otherwise (a full fine-tune's head, a refit from scratch after drift):
    then the parent's head is the prior.

    Why not always the parent's: every refit learns from all the labels again (the new ones and the replay buffer's),
    so holding it near a parent that already learned them counts them once more per job, and after a few jobs the
    starter's 10,000 examples weigh as little as a handful of labels. On finance tweets (bench/loop.py, 500 labels
    in batches of 50, 3 seeds, the latest batch then at 70% of each job's weight) what served after 500 labels had
    0.726 accuracy and 0.654 macro-F1 held near the parent, 0.738 and 0.671 held near the starter (0.710 and 0.675
    before any label)."""
    folder = registry.version_dir(version)
    if (folder / ANCHOR).is_file():
        return Head.load(folder / ANCHOR)
    return Head.load(folder / HEAD) if registry.metadata(version).kind == "starter" else None


def _finish(
    registry: ModelRegistry, split: Split, encoder: TorchEncoder, body_dir: Path, body_id: str, body_source: str,
    version: str, parent: str | None, kind: str, started: float, params: dict[str, Any], prior: Head | None = None,
    kept: Head | None = None,
) -> ModelMetadata:  # fmt: skip
    cache = EmbeddingCache(body_dir)
    try:
        embeddings = cache.encode(encoder, split.train_texts)
        if prior is not None:
            head = prior.refine(embeddings, split.train_labels, float(params["prior_strength"]), split.train_weights)
        else:
            head = Head.fit(embeddings, split.train_labels, seed=int(params.get("seed", 42)), weights=split.train_weights)
        metrics = (classification_metrics(head.predict_proba(cache.encode(encoder, split.test_texts)), split.test_labels)
                   if split.test_texts else {})  # fmt: skip
    finally:
        cache.close()
    metrics["train_examples"] = float(len(split.train_texts))
    metrics["train_seconds"] = round(time.monotonic() - started, 2)
    staged = registry.staging()
    head.save(staged / HEAD)
    if kept is not None:
        kept.save(staged / ANCHOR)
    metadata = ModelMetadata(
        version=version, analyzer="setfit", body_id=body_id, body_source=body_source, parent=parent,
        data_fingerprint=split.fingerprint(), metrics=metrics, kind=kind, params=params,
    )  # fmt: skip
    try:
        registry.add_version(staged, metadata)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    log.debug("trained %s (%s): %s", version, kind, metrics)
    return metadata


class SetfitTrainer:
    """SetFit's Trainer (bizstream.learning.trainers): a head refit on the serving body in ``head`` mode (a full
    fine-tune while nothing serves yet), a contrastive fine-tune of the body in ``full`` mode."""

    name = "setfit"

    def __init__(
        self, registry: ModelRegistry, mode: str = "head", body: str = "", profile: TrainProfile = PROFILES["cpu"],
        seed: int = 42, max_seq_length: int = 128, device: str = "cpu", show_progress: bool = False, starter: bool = True,
        prior_strength: float = 1.0, export_onnx: bool = True, runtime: str = "auto",
    ) -> None:  # fmt: skip
        if mode not in ("head", "full"):
            raise ValueError(f"mode must be 'head' or 'full', got {mode!r}")
        self.registry = registry
        self.mode = mode
        self.body = body
        self.profile = profile
        self.seed = seed
        self.max_seq_length = max_seq_length
        self.device = device
        self.show_progress = show_progress
        self.starter = starter
        self.prior_strength = prior_strength
        self.export_onnx = export_onnx
        self.runtime = runtime

    def load(self) -> None:
        """With the starter on and nothing serving, install the starter: the model a head refit starts from."""
        if self.starter:
            from bizstream_plugins.setfit.starter import install_starter

            install_starter(self.registry)

    def train(self, split: Split, parent: str | None) -> ModelMetadata:
        """A new version from ``split``: head-only on the parent's body, or a full fine-tune."""
        if self.mode == "head" and parent is not None:
            return refit_head(self.registry, split, parent=parent, seed=self.seed, prior_strength=self.prior_strength)
        metadata = train_full(self.registry, split, self.body or str(default_body()), self.profile, seed=self.seed,
                              max_seq_length=self.max_seq_length, parent=parent, show_progress=self.show_progress,
                              device=self.device)  # fmt: skip
        if self.export_onnx:  # a new body: served as INT8 ONNX from its first batch, without a manual `export onnx`
            from bizstream_plugins.setfit.export import export_version

            export_version(self.registry, metadata.version)
        return metadata

    def predict_proba(self, version: str | None, texts: Sequence[str]) -> np.ndarray | None:
        """Class probabilities of one version as it serves (setfit.runtime: INT8 ONNX once its body is exported), so
        the gate, pseudo-labels and the labeler measure what workers serve; embeddings through its body's cache.
        None for no version."""
        if version is None:
            return None
        from bizstream_plugins.setfit.analyzer import encoder_for

        runtime, encoder = encoder_for(self.registry, version, self.runtime, self.max_seq_length, lazy=True)
        cache = EmbeddingCache(self.registry.body_dir(self.registry.metadata(version).body_id), runtime)
        try:
            embeddings = cache.encode(encoder, list(texts))
        finally:
            cache.close()
        return Head.load(self.registry.version_dir(version) / "head.safetensors").predict_proba(embeddings)
