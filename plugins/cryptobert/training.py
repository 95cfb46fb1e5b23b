"""CryptoBERT versions: LoRA-train on the training labels, gate against what serves, register, export for CPU.

A version in CryptoBERT's registry (``Settings.cryptobert_registry``) holds no copy of the base model, which is
named by ``body_source`` and loaded from a folder or the local hub cache:

    versions/<v>/adapter/   adapter_config.json + adapter_model.safetensors (peft, r=16, alpha=32)
    versions/<v>/onnx/      model.int8.onnx (the merged model, INT8) + tokenizer.json: serving needs nothing else

:class:`CryptoBertTrainer` is CryptoBERT's Trainer (bizstream.learning.trainers): the host gates a candidate against
the serving version, or against the base model before any adapter has served.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence

import numpy as np

from bizstream.learning.dataset import Split, classification_metrics
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream_plugins.cryptobert.export import export_onnx
from bizstream_plugins.cryptobert.model import ADAPTER, class_order, load_classifier, predict_proba, train_lora, with_adapter

log = logging.getLogger(__name__)


class CryptoBertTrainer:
    """Trains LoRA adapters on the base model (r=16, alpha=32), stores each with its INT8 ONNX export."""

    name = "cryptobert"

    def __init__(
        self, registry: ModelRegistry, model_ref: str, *, max_length: int = 128, epochs: int = 1, lr: float = 5e-4,
        seed: int = 42, r: int = 16, alpha: int = 32, export: bool = True,
    ) -> None:  # fmt: skip
        self.registry = registry
        self.model_ref = model_ref
        self.max_length = max_length
        self.epochs = epochs
        self.lr = lr
        self.seed = seed
        self.r = r
        self.alpha = alpha
        self.export = export

    def load(self) -> None:
        """Nothing to prepare: the base model is loaded per training (AnalyzerUnavailable there when it is missing)."""

    def train(self, split: Split, parent: str | None) -> ModelMetadata:
        """Train an adapter on ``split``, evaluate it on the held-back part, store it (and its ONNX export)."""
        if not split.train_texts or not split.test_texts:
            raise ValueError("need labels to train on and a held-back slice to evaluate; import more labels")
        base, tokenizer = load_classifier(self.model_ref, self.max_length)
        staged = self.registry.staging()
        try:
            trained = train_lora(base, tokenizer, split.train_texts, split.train_labels, staged / ADAPTER,
                                 r=self.r, alpha=self.alpha, epochs=self.epochs, lr=self.lr, seed=self.seed)  # fmt: skip
            metrics = classification_metrics(predict_proba(trained, tokenizer, split.test_texts), split.test_labels)
            merged = trained.merge_and_unload()
            order = class_order(merged.config.id2label)
            if self.export:
                onnx_file = export_onnx(merged, tokenizer, staged / "onnx", int8=True)
                (onnx_file.parent / "model.onnx").unlink()  # the fp32 intermediate: serving uses the INT8 file
                tokenizer.backend_tokenizer.save(str(staged / "onnx" / "tokenizer.json"))
            metadata = ModelMetadata(
                version=self.registry.new_version_id(), analyzer=self.name, body_id="", body_source=self.model_ref,
                parent=parent, data_fingerprint=split.fingerprint(),
                metrics={**metrics, "train_examples": float(len(split.train_texts)),
                         "test_examples": float(len(split.test_texts))},
                kind="lora",
                params={"r": self.r, "alpha": self.alpha, "epochs": self.epochs, "lr": self.lr, "seed": self.seed,
                        "max_length": int(tokenizer.model_max_length), "class_order": order,
                        "pad_token_id": int(tokenizer.pad_token_id or 0)},
            )  # fmt: skip
            self.registry.add_version(staged, metadata)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        log.info("cryptobert %s trained: %s", metadata.version, metrics)
        return metadata

    def predict_proba(self, version: str | None, texts: Sequence[str]) -> np.ndarray:
        """Probabilities of a version (its adapter merged into the base, on torch), or of the base model for None."""
        model, tokenizer = load_classifier(self.model_ref, self.max_length)
        if version is not None:
            model = with_adapter(model, self.registry.version_dir(version) / ADAPTER)
        return predict_proba(model, tokenizer, texts)
