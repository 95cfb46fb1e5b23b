"""Sequence classifiers (CryptoBERT and the like) with LoRA adapters: load, predict, fine-tune; and the INT8 ONNX
export of a version served on onnxruntime alone (:class:`OnnxClassifier`).

The base model loads from a local folder, or from a hub id only when its files are already in the local Hugging Face
cache: nothing is downloaded at run time. safetensors only, trust_remote_code=False. LoRA (peft; r=16, alpha=32 by
default) trains a few thousand parameters; the adapter is saved as safetensors and merged into the base for serving
or for the ONNX export.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bizstream.errors import AnalyzerUnavailable
from bizstream.learning.registry import ModelRegistry
from bizstream.learning.weights import offline_weights
from bizstream.records import SENTIMENTS

DEFAULT_MODEL = "ElKulako/cryptobert"
ADAPTER = "adapter"  # a version's LoRA adapter folder
ONNX_INT8 = "onnx/model.int8.onnx"  # a version's merged model, INT8, served without torch


def registry_at(root: Path) -> ModelRegistry:
    """CryptoBERT's registry: every version holds a LoRA adapter."""
    return ModelRegistry(root, payload=f"{ADAPTER}/adapter_model.safetensors")


def class_order(id2label: dict[int, str]) -> list[int]:
    """Model output column for each of SENTIMENTS (bearish, neutral, bullish), from the model's own label names."""
    names = {str(v).strip().lower(): int(k) for k, v in id2label.items()}
    missing = [c.value for c in SENTIMENTS if c.value not in names]
    if missing:
        raise AnalyzerUnavailable(f"the model's labels {sorted(id2label.values())} lack {missing}; it must name bearish, neutral and bullish")
    return [names[c.value] for c in SENTIMENTS]


def load_classifier(model: str, max_length: int = 128, setting: str = "the model setting") -> tuple[Any, Any]:
    """(model, tokenizer) from a folder, or from the local hub cache; AnalyzerUnavailable with the reason otherwise."""
    with offline_weights(model, setting) as source:  # says "no weights" before torch is imported for nothing
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, trust_remote_code=False)
        classifier = AutoModelForSequenceClassification.from_pretrained(
            source, local_files_only=True, trust_remote_code=False, use_safetensors=True
        ).eval()
    # Never past the model's own position table: a long post would index outside it (RoBERTa's positions start after
    # its padding index, so two of them are not usable).
    positions = getattr(classifier.config, "max_position_embeddings", None)
    tokenizer.model_max_length = min(max_length, positions - 2) if positions else max_length
    return classifier, tokenizer


def predict_proba(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """(n, 3) probabilities in SENTIMENTS order."""
    import torch

    order = class_order(model.config.id2label)
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True, return_tensors="pt")
            logits = model(**enc).logits
            out.append(torch.softmax(logits, dim=-1)[:, order].numpy())
    return np.concatenate(out) if out else np.zeros((0, 3))


def train_lora(
    model: Any, tokenizer: Any, texts: Sequence[str], labels: Sequence[str], out_dir: Path,
    r: int = 16, alpha: int = 32, epochs: int = 1, lr: float = 5e-4, batch_size: int = 16, seed: int = 42,
) -> Any:  # fmt: skip
    """Fine-tune LoRA adapters on (text, label) pairs; saves them (safetensors) to out_dir; returns the peft model."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    torch.manual_seed(seed)
    order = class_order(model.config.id2label)
    targets = [order[SENTIMENTS.index(label)] for label in labels]
    peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha,
                                                  target_modules=["query", "value"], lora_dropout=0.0))  # fmt: skip
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr)
    indices = list(range(len(texts)))
    rnd = random.Random(seed)
    peft_model.train()
    for _ in range(epochs):
        rnd.shuffle(indices)
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            enc = tokenizer([texts[i] for i in chunk], padding=True, truncation=True, return_tensors="pt")
            loss = torch.nn.functional.cross_entropy(peft_model(**enc).logits, torch.tensor([targets[i] for i in chunk]))
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    peft_model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out_dir), safe_serialization=True)
    return peft_model


def with_adapter(model: Any, adapter_dir: Path, merge: bool = True) -> Any:
    """The base model with a saved adapter applied (merged into the weights by default)."""
    from peft import PeftModel

    adapted = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    return adapted.merge_and_unload() if merge else adapted


class OnnxClassifier:
    """A version's INT8 ONNX export with its tokenizer.json, on onnxruntime; never imports torch. Each text runs alone,
    unpadded (:class:`bizstream.learning.serving.OnnxSession`): under INT8 its answer in a batch would depend on the
    other texts in it."""

    def __init__(self, version_dir: Path, params: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        from bizstream.learning.serving import OnnxSession

        self.session = OnnxSession(version_dir / ONNX_INT8)
        self.tokenizer = Tokenizer.from_file(str(version_dir / "onnx" / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(params.get("max_length", 128)))
        self.tokenizer.no_padding()
        self.order = [int(i) for i in params["class_order"]]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in SENTIMENTS order."""
        if not texts:
            return np.zeros((0, 3))
        logits = np.concatenate(self.session.run_texts("logits", self.tokenizer.encode_batch(list(texts))))[:, self.order]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return result
