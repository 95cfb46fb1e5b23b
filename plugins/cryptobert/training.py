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
from dataclasses import dataclass

from bizstream.learning.dataset import Split, classification_metrics
from bizstream.learning.registry import ModelMetadata, ModelRegistry
from bizstream_plugins.cryptobert.export import export_onnx
from bizstream_plugins.cryptobert.model import ADAPTER, class_order, load_classifier, predict_proba, train_lora, with_adapter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one training run produced and whether it now serves."""

    metadata: ModelMetadata
    incumbent: str  # the version it was compared with, or "base"
    incumbent_metrics: dict[str, float]
    promoted: bool


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
    incumbent_metrics = classification_metrics(predict_proba(baseline, tokenizer, split.test_texts), split.test_labels)
    del baseline

    base, tokenizer = load_classifier(model_ref, max_length)  # fresh: the incumbent's adapter was merged into the other
    staged = registry.staging()
    try:
        trained = train_lora(base, tokenizer, split.train_texts, split.train_labels, staged / ADAPTER,
                             r=r, alpha=alpha, epochs=epochs, lr=lr, seed=seed)  # fmt: skip
        metrics = classification_metrics(predict_proba(trained, tokenizer, split.test_texts), split.test_labels)
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
            params={"r": r, "alpha": alpha, "epochs": epochs, "lr": lr, "seed": seed, "max_length": int(tokenizer.model_max_length),
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
