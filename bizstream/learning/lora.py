"""Sequence classifiers (CryptoBERT and the like) with LoRA adapters: load, predict, fine-tune, export.

The base model loads from a local folder, or from a hub id only when its files are already in the local Hugging Face
cache: nothing is downloaded at run time. safetensors only, trust_remote_code=False. LoRA (peft; r=16, alpha=32 by
default) trains a few thousand parameters; the adapter is saved as safetensors and merged into the base for serving
or for the ONNX export.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bizstream.errors import AnalyzerUnavailable
from bizstream.learning.model import CLASSES


def class_order(id2label: dict[int, str]) -> list[int]:
    """Model output column for each of CLASSES (bearish, neutral, bullish), from the model's own label names."""
    names = {str(v).strip().lower(): int(k) for k, v in id2label.items()}
    missing = [c for c in CLASSES if c not in names]
    if missing:
        raise AnalyzerUnavailable(f"the model's labels {sorted(id2label.values())} lack {missing}; it must name bearish, neutral and bullish")
    return [names[c] for c in CLASSES]


@contextmanager
def offline_weights(model: str, setting: str) -> Iterator[str]:
    """The source to load ``model`` from (a folder when one exists, else the hub id, for the local cache only); a
    loading error inside the block becomes AnalyzerUnavailable saying what to configure."""
    local = Path(model).expanduser()
    try:
        yield str(local) if local.exists() else model
    except (OSError, ValueError) as exc:
        raise AnalyzerUnavailable(
            f"no weights for {model!r} on this machine ({type(exc).__name__}); nothing is downloaded at run time: "
            f"put the model (safetensors) in a folder and point {setting} at it"
        ) from None


def load_classifier(model: str, max_length: int = 128, setting: str = "the model setting") -> tuple[Any, Any]:
    """(model, tokenizer) from a folder, or from the local hub cache; AnalyzerUnavailable with the reason otherwise."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    with offline_weights(model, setting) as source:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, trust_remote_code=False)
        classifier = AutoModelForSequenceClassification.from_pretrained(
            source, local_files_only=True, trust_remote_code=False, use_safetensors=True
        ).eval()
    tokenizer.model_max_length = max_length
    return classifier, tokenizer


def predict_proba(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """(n, 3) probabilities in CLASSES order."""
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
    targets = [order[CLASSES.index(label)] for label in labels]
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


def export_onnx(model: Any, tokenizer: Any, out_dir: Path, int8: bool = True) -> Path:
    """Export a (merged) classifier's logits to ONNX, INT8-quantized by default; returns the file to serve."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "model.onnx"

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits  # type: ignore[no-any-return]

    # Eager attention traces into a graph whose padding mask follows the inputs; the SDPA path bakes in the example's.
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    example = tokenizer(["example text", "another one here"], padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask")} | {"logits": {0: "batch"}}
    with torch.no_grad():
        # The wrapper must be in eval mode too: the exporter restores each module's mode afterwards, and a wrapper in
        # training mode would leave the caller's model with dropout on.
        torch.onnx.export(Logits(model).eval(), (example["input_ids"], example["attention_mask"]), str(fp32),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)  # fmt: skip
    if not int8:
        return fp32
    int8_file = out_dir / "model.int8.onnx"
    quantize_dynamic(str(fp32), str(int8_file), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
    return int8_file
