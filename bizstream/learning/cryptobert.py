"""CryptoBERT versions: LoRA-train on the training labels, gate against what serves, register, export for CPU.

A version in CryptoBERT's registry (``Settings.cryptobert_registry``) holds no copy of the base model, which is
named by ``body_source`` and loaded from a folder or the local hub cache:

    versions/<v>/adapter/   adapter_config.json + adapter_model.safetensors (peft, r=16, alpha=32)
    versions/<v>/onnx/      model.int8.onnx (the merged model, INT8) + tokenizer.json: serving needs nothing else

A candidate is promoted only when its held-back accuracy is not worse than the serving model's on the same split
(the base model's, before any adapter has served), less ``gate_margin``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bizstream.learning.lora import class_order, export_onnx, load_classifier, predict_proba, train_lora, with_adapter
from bizstream.learning.model import CLASSES
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream.learning.training import Split

log = logging.getLogger(__name__)
DEFAULT_MODEL = "ElKulako/cryptobert"
ADAPTER = "adapter"
ONNX_INT8 = "onnx/model.int8.onnx"


def registry_at(root: Path) -> ModelRegistry:
    """CryptoBERT's registry: every version holds a LoRA adapter."""
    return ModelRegistry(root, payload=f"{ADAPTER}/adapter_model.safetensors")


@dataclass(frozen=True)
class Outcome:
    """What one training run produced and whether it now serves."""

    metadata: ModelMetadata
    incumbent: str  # the version it was compared with, or "base"
    incumbent_metrics: dict[str, float]
    promoted: bool


def evaluate(probabilities: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 of (n, 3) probabilities in CLASSES order against label names."""
    from sklearn.metrics import f1_score

    predicted = [CLASSES[i] for i in probabilities.argmax(axis=1)]
    accuracy = float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)])) if labels else 0.0
    macro_f1 = float(f1_score(list(labels), predicted, labels=list(CLASSES), average="macro", zero_division=0))
    return {"accuracy": accuracy, "macro_f1": macro_f1}


def train_version(
    registry: ModelRegistry, model_ref: str, split: Split, *, epochs: int = 1, lr: float = 5e-4, seed: int = 42,
    r: int = 16, alpha: int = 32, max_length: int = 128, gate_margin: float = 0.0, export: bool = True,
) -> Outcome:  # fmt: skip
    """Train a LoRA adapter on ``split``, store it (and its INT8 ONNX export) as a version, promote it if not worse."""
    if not split.train_texts or not split.test_texts:
        raise ValueError("need labels to train on and a held-back slice to evaluate; import more labels")
    incumbent = registry.serving()
    baseline, tokenizer = load_classifier(model_ref, max_length)
    if incumbent is not None:
        baseline = with_adapter(baseline, registry.version_dir(incumbent) / ADAPTER)
    incumbent_metrics = evaluate(predict_proba(baseline, tokenizer, split.test_texts), split.test_labels)
    del baseline

    base, tokenizer = load_classifier(model_ref, max_length)  # fresh: the incumbent's adapter was merged into the other
    staged = registry.staging()
    try:
        trained = train_lora(base, tokenizer, split.train_texts, split.train_labels, staged / ADAPTER,
                             r=r, alpha=alpha, epochs=epochs, lr=lr, seed=seed)  # fmt: skip
        metrics = evaluate(predict_proba(trained, tokenizer, split.test_texts), split.test_labels)
        merged = trained.merge_and_unload()
        order = class_order(merged.config.id2label)
        if export:
            onnx_file = export_onnx(merged, tokenizer, staged / "onnx", int8=True)
            (onnx_file.parent / "model.onnx").unlink()  # the fp32 intermediate: serving uses the INT8 file
            tokenizer.backend_tokenizer.save(str(staged / "onnx" / "tokenizer.json"))
        metadata = ModelMetadata(
            version=registry.new_version_id(), analyzer="cryptobert", body_id="", body_source=model_ref,
            parent=incumbent, data_fingerprint=split.fingerprint(),
            metrics={**metrics, "train_examples": float(len(split.train_texts)),
                     "test_examples": float(len(split.test_texts))},
            kind="lora",
            params={"r": r, "alpha": alpha, "epochs": epochs, "lr": lr, "seed": seed, "max_length": max_length,
                    "class_order": order, "pad_token_id": int(tokenizer.pad_token_id or 0)},
        )  # fmt: skip
        registry.add_version(staged, metadata)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    promoted = metrics["accuracy"] >= incumbent_metrics["accuracy"] - gate_margin
    if promoted:
        registry.promote(metadata.version)
    log.info("cryptobert %s: accuracy %.3f vs %s %.3f -> %s", metadata.version, metrics["accuracy"],
             incumbent or "base", incumbent_metrics["accuracy"], "promoted" if promoted else "kept aside")  # fmt: skip
    return Outcome(metadata, incumbent or "base", incumbent_metrics, promoted)


class OnnxClassifier:
    """A version's INT8 ONNX export with its tokenizer.json, on onnxruntime; never imports torch."""

    def __init__(self, version_dir: Path, params: dict[str, Any], batch_size: int = 32) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.session = ort.InferenceSession(str(version_dir / ONNX_INT8), providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(version_dir / "onnx" / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(params.get("max_length", 128)))
        self.tokenizer.enable_padding(pad_id=int(params.get("pad_token_id", 0)))
        self.order = [int(i) for i in params["class_order"]]
        self.batch_size = batch_size

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in CLASSES order."""
        out = []
        for start in range(0, len(texts), self.batch_size):
            encodings = self.tokenizer.encode_batch(list(texts[start : start + self.batch_size]))
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (logits,) = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
            logits = logits[:, self.order]
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            out.append(exp / exp.sum(axis=1, keepdims=True))
        return np.concatenate(out) if out else np.zeros((0, 3))
