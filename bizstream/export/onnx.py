"""Export a SetFit body to ONNX and quantize it to INT8 (onnxruntime dynamic quantization), for CPU serving.

The exported graph takes input_ids / attention_mask / token_type_ids and returns last_hidden_state; pooling and the
head stay in numpy (bizstream.learning.model), so serving needs onnxruntime, tokenizers and numpy — not torch.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from bizstream.learning.registry import ModelRegistry

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Exported:
    """Where the two ONNX files are."""

    fp32: Path
    int8: Path


def export_body(body_dir: Path, per_channel: bool = True, opset: int = 17) -> Exported:
    """Write <body>/onnx/model.onnx and model.int8.onnx (atomically: a staged folder renamed into place)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    class LastHiddenState(torch.nn.Module):
        """Keyword arguments only: the transformers 5 forward() signature is not positional-friendly."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state  # type: ignore[no-any-return]

    model = AutoModel.from_pretrained(str(body_dir), trust_remote_code=False, use_safetensors=True).eval()
    staged = body_dir / f".onnx-{uuid.uuid4().hex}"
    staged.mkdir()
    try:
        example = tuple(torch.ones(2, 8, dtype=torch.long) if n != "token_type_ids" else torch.zeros(2, 8, dtype=torch.long) for n in INPUTS)
        axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "last_hidden_state")}
        with torch.no_grad():
            torch.onnx.export(
                LastHiddenState(model), example, str(staged / "model.onnx"), input_names=list(INPUTS),
                output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=opset, dynamo=False,
            )  # fmt: skip
        quantize_dynamic(
            str(staged / "model.onnx"), str(staged / "model.int8.onnx"), weight_type=QuantType.QInt8, per_channel=per_channel
        )
        target = body_dir / "onnx"
        if target.exists():
            old = body_dir / f".onnx-old-{uuid.uuid4().hex}"
            os.rename(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return Exported(target / "model.onnx", target / "model.int8.onnx")


def export_version(registry: ModelRegistry, version: str | None = None) -> Exported:
    """Export the body of a version (default: the serving one)."""
    from bizstream.learning.registry import RegistryError

    version = version or registry.serving()
    if version is None:
        raise RegistryError("no version given and none is serving; train one first (bizstream train setfit)")
    return export_body(registry.body_dir(registry.metadata(version).body_id))
