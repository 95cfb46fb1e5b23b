"""Export a SetFit body to ONNX and quantize it to INT8 (bizstream.export.onnx.quantize), for CPU serving.

The exported graph takes input_ids / attention_mask / token_type_ids and returns last_hidden_state; pooling and the
head stay in numpy (bizstream.learning.embeddings, bizstream_plugins.setfit.model), so serving needs onnxruntime,
tokenizers and numpy — not torch.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from bizstream.export.onnx import quantize
from bizstream.learning.registry import ModelRegistry

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Exported:
    """Where the two ONNX files are."""

    fp32: Path
    int8: Path


def export_body(body_dir: Path, keep_fp32: str = "none", opset: int = 17) -> Exported:
    """Write <body>/onnx/model.onnx and model.int8.onnx (atomically: a staged folder renamed into place)."""
    import torch
    from transformers import AutoModel

    class LastHiddenState(torch.nn.Module):
        """Keyword arguments only: the transformers 5 forward() signature is not positional-friendly."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state  # type: ignore[no-any-return]

    # Eager attention exports as plain MatMul/Softmax, which INT8 quantization speeds up; the SDPA path exports to
    # a graph that quantized to half the speed-up here (1.5x instead of 3x over torch on the 2-core AVX2 machine).
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar on every export
    model = AutoModel.from_pretrained(
        str(body_dir), trust_remote_code=False, use_safetensors=True, attn_implementation="eager"
    ).eval()
    staged = body_dir / f".onnx-{uuid.uuid4().hex}"
    staged.mkdir()
    root = logging.getLogger()
    level = root.level
    try:
        example = tuple(torch.ones(2, 8, dtype=torch.long) if n != "token_type_ids" else torch.zeros(2, 8, dtype=torch.long) for n in INPUTS)
        axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "last_hidden_state")}
        # The tracer's warnings and onnxruntime's "consider pre-processing" hint (on the root logger) are about the
        # export machinery, nothing a user can act on; they were the first screenful a new user saw.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root.setLevel(logging.ERROR)
            torch.onnx.export(
                LastHiddenState(model).eval(), example, str(staged / "model.onnx"), input_names=list(INPUTS),
                output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=opset, dynamo=False,
            )  # fmt: skip
            quantize(staged / "model.onnx", staged / "model.int8.onnx", keep_fp32)
        target = body_dir / "onnx"
        if target.exists():
            old = body_dir / f".onnx-old-{uuid.uuid4().hex}"
            os.rename(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    finally:
        root.setLevel(level)
    return Exported(target / "model.onnx", target / "model.int8.onnx")


def export_version(registry: ModelRegistry, version: str | None = None, keep_fp32: str = "none") -> Exported:
    """Export the body of a version (default: the serving one)."""
    from bizstream.learning.registry import RegistryError

    version = version or registry.serving()
    if version is None:
        raise RegistryError("no version given and none is serving; train one first (bizstream train setfit)")
    return export_body(registry.body_dir(registry.metadata(version).body_id), keep_fp32=keep_fp32)


def export_body_apart(body_dir: Path, timeout_s: float = 600.0) -> None:
    """:func:`export_body` in a child process, for a serving process: the export imports torch (some 500 MB that would
    stay resident in a worker that serves with onnxruntime alone). OSError when it fails, with the child's last line."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bizstream_plugins.setfit.export", str(body_dir)], capture_output=True,
                          text=True, timeout=timeout_s)  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OSError(f"exporting {body_dir} to ONNX failed (exit {done.returncode}): {last}")


if __name__ == "__main__":  # python -m bizstream_plugins.setfit.export BODY_DIR: what export_body_apart runs
    import sys

    export_body(Path(sys.argv[1]))
