"""The SetFit analyzer: serves the promoted model from the SetFit registry, on ONNX Runtime or torch.

score = P(bullish) − P(bearish); label = the most probable class; confidence = its probability. When another
version is promoted, the next batch notices, a background thread loads it, and the batch after that uses it — the
batches in between keep being scored by the old model, so nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bizstream.analyzer import Prediction
from bizstream.errors import AnalyzerUnavailable
from bizstream.learning.embeddings import OnnxEncoder, TorchEncoder
from bizstream.learning.registry import ModelRegistry, RegistryError
from bizstream.learning.serving import HotSwap
from bizstream.records import Post
from bizstream_plugins.setfit.model import Head, SentimentModel

ONNX_FILES = {"onnx-fp32": "model.onnx", "onnx-int8": "model.int8.onnx"}


@dataclass(frozen=True)
class Loaded:
    """A model version ready to serve."""

    version: str
    runtime: str
    model: SentimentModel


def load_version(registry: ModelRegistry, version: str, runtime: str, max_seq_length: int, batch_size: int = 16) -> Loaded:
    """Build the model of one registry version on the requested runtime ("auto": INT8 ONNX when exported)."""
    resolved, encoder = encoder_for(registry, version, runtime, max_seq_length, batch_size)
    return Loaded(version, resolved, SentimentModel(encoder, Head.load(registry.version_dir(version) / "head.safetensors")))


def encoder_for(
    registry: ModelRegistry, version: str, runtime: str, max_seq_length: int, batch_size: int = 16, lazy: bool = False
) -> tuple[str, Any]:  # fmt: skip
    """The runtime a version serves on ("auto": INT8 ONNX when its body is exported, else torch) and its encoder:
    what the analyzer serves with, and what the trainer measures a version with."""
    metadata = registry.metadata(version)
    body = registry.body_dir(metadata.body_id)
    if runtime == "auto":
        runtime = "onnx-int8" if (body / "onnx" / ONNX_FILES["onnx-int8"]).is_file() else "torch"
    length = int(metadata.params.get("max_seq_length", max_seq_length))
    if runtime == "torch":
        return runtime, TorchEncoder(body, max_seq_length=length, batch_size=batch_size, lazy=lazy)
    onnx_file = body / "onnx" / ONNX_FILES[runtime]
    if not onnx_file.is_file():
        raise AnalyzerUnavailable(f"setfit.runtime is {runtime} but {onnx_file} does not exist; run `bizstream export onnx`")
    return runtime, OnnxEncoder(onnx_file, body / "tokenizer.json", max_seq_length=length)


class SetfitAnalyzer:
    """Serves whatever version the registry's serving pointer names, swapping between batches."""

    name = "setfit"

    def __init__(
        self, registry: Path, runtime: str = "auto", batch_size: int = 16, max_seq_length: int = 128, starter: bool = True
    ) -> None:  # fmt: skip
        self.registry = ModelRegistry(registry)
        self.starter = starter
        self.runtime = runtime
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self._swap: HotSwap[Loaded] = HotSwap(
            self.registry, lambda v: load_version(self.registry, v, runtime, max_seq_length, batch_size), "setfit"
        )

    @property
    def version(self) -> str:
        """The version in use."""
        return self._swap.version

    def load(self) -> None:
        """Load the serving version; unavailable (with what to do) when nothing has been trained and promoted."""
        version = self.registry.serving()
        if version is None and self.starter:
            from bizstream_plugins.setfit.starter import install_starter

            version = install_starter(self.registry)
        if version is None:
            raise AnalyzerUnavailable(
                f"no SetFit model is serving in {self.registry.root} and setfit.starter is off; turn it on, or import "
                f"labels (`bizstream labels import FILE`) "
                f"and train one (`bizstream train setfit`)"
            )
        try:
            self._swap.start(version)
        except RegistryError as exc:
            raise AnalyzerUnavailable(str(exc)) from None

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        """Predict every post with text, in batches; swap to a newly promoted version first if one is ready."""
        current = self._swap.for_batch()
        wanted = [i for i, p in enumerate(posts) if p.text.strip()]
        out: list[Prediction | None] = [None] * len(posts)
        if wanted:  # the encoders batch (by length) themselves
            probabilities = current.model.predict_proba([posts[i].text for i in wanted])
            for i, row in zip(wanted, probabilities, strict=True):
                out[i] = Prediction.from_probabilities(row)
        return out

    @property
    def serving_runtime(self) -> str:
        """The runtime of the version in use."""
        return self._swap.current.runtime if self._swap.current else "-"

    def wait_for_swap(self, timeout_s: float = 60.0) -> None:
        """Block until a background load (if any) is done; for tests and benchmarks."""
        self._swap.wait_for_swap(timeout_s)
