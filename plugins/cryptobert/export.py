"""CryptoBERT's export for CPU serving: the merged classifier's logits to ONNX, INT8-quantized (bizstream.export.onnx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bizstream.export.onnx import quantize


def export_onnx(model: Any, tokenizer: Any, out_dir: Path, int8: bool = True) -> Path:
    """Export a (merged) classifier's logits to ONNX, INT8-quantized by default; returns the file to serve."""
    import torch

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
    quantize(fp32, int8_file)
    return int8_file
