"""CryptoBERT: a RoBERTa classifier trained on crypto social posts (ElKulako/cryptobert: Bearish/Neutral/Bullish).

What it serves, first match wins:
1. ``[plugins.options.cryptobert] adapter``: the base model with that LoRA adapter merged in (torch);
2. the version promoted in CryptoBERT's registry (``bizstream train cryptobert`` writes them): its INT8 ONNX export
   on onnxruntime (``runtime = "auto"`` or ``"onnx-int8"``; no torch, no base weights needed), or the base model with
   its adapter merged in (``runtime = "torch"``);
3. the base model alone (``model``: a folder, or a hub id already in the local Hugging Face cache).
Nothing is downloaded at run time. Without the weights it reports itself unavailable, says why, and the pipeline
runs without it. score = P(bullish) - P(bearish).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bizstream.analyzer import Prediction
from bizstream.errors import AnalyzerUnavailable, ConfigError
from bizstream.learning.serving import HotSwap
from bizstream.records import Post
from bizstream_plugins.cryptobert.model import ADAPTER, DEFAULT_MODEL, ONNX_INT8, OnnxClassifier, registry_at

__all__ = ["CryptoBertAnalyzer"]
RUNTIMES = ("auto", "torch", "onnx-int8")
OPTIONS = {"model", "adapter", "registry", "runtime", "max_length", "batch_size"}  # [plugins.options.cryptobert]
TRAINING_OPTIONS = {"epochs", "lr", "onnx"}  # the same table, read by its trainer


class _Torch:
    def __init__(self, model: Any, tokenizer: Any, batch_size: int) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from bizstream_plugins.cryptobert.model import predict_proba

        return predict_proba(self.model, self.tokenizer, texts, self.batch_size)


@dataclass(frozen=True)
class Served:
    """A loaded classifier and what it is."""

    version: str
    runtime: str
    classifier: _Torch | OnnxClassifier


class CryptoBertAnalyzer:
    """A sequence classifier with the three sentiment labels: adapter, registry version, or the base model.

    Serving from the registry, it swaps to a newly promoted version between batches (bizstream.learning.serving).
    """

    name = "cryptobert"

    def __init__(
        self, model: str = DEFAULT_MODEL, adapter: str = "", registry: Path | None = None, runtime: str = "auto",
        max_length: int = 128, batch_size: int = 32,
    ) -> None:  # fmt: skip
        if runtime not in RUNTIMES:
            raise ConfigError(f"[plugins.options.cryptobert] runtime must be one of {RUNTIMES}, got {runtime!r}")
        self.model_ref = model
        self.adapter = adapter
        self.registry = registry_at(registry) if registry else None
        self.runtime = runtime
        self.max_length = max_length
        self.batch_size = batch_size
        self._fixed: Served | None = None  # the adapter or base model, when no registry version serves
        self._swap: HotSwap[Served] | None = None

    @property
    def version(self) -> str:
        """The version in use."""
        served = self._served()
        return served.version if served else self.model_ref

    @property
    def serving_runtime(self) -> str:
        """onnx-int8 or torch."""
        served = self._served()
        return served.runtime if served else "-"

    def load(self) -> None:
        """Load what serves (AnalyzerUnavailable with the reason when its weights are not on this machine)."""
        serving = self.registry.serving() if self.registry and not self.adapter else None
        if serving is not None and self.registry is not None:
            self._swap = HotSwap(self.registry, self._load_version, "cryptobert")
            self._swap.start(serving)
            return
        adapter = Path(self.adapter).expanduser() if self.adapter else None
        version = f"{self.model_ref}+{adapter.name}" if adapter else self.model_ref
        self._fixed = Served(version, "torch", self._torch(adapter))

    def _load_version(self, version: str) -> Served:
        assert self.registry is not None
        version_dir = self.registry.version_dir(version)
        onnx_ok = (version_dir / ONNX_INT8).is_file()
        if self.runtime == "onnx-int8" and not onnx_ok:
            raise AnalyzerUnavailable(f"runtime is onnx-int8 but {version_dir / ONNX_INT8} does not exist")
        if self.runtime != "torch" and onnx_ok:
            params = self.registry.metadata(version).params
            return Served(version, "onnx-int8", OnnxClassifier(version_dir, params))
        return Served(version, "torch", self._torch(version_dir / ADAPTER))

    def _torch(self, adapter: Path | None) -> _Torch:
        from bizstream_plugins.cryptobert.model import load_classifier, with_adapter

        model, tokenizer = load_classifier(self.model_ref, self.max_length, setting="[plugins.options.cryptobert] model")
        if adapter is not None:
            model = with_adapter(model, adapter)
        return _Torch(model, tokenizer, self.batch_size)

    def _served(self) -> Served | None:
        return self._swap.current if self._swap is not None else self._fixed

    def wait_for_swap(self, timeout_s: float = 60.0) -> None:
        """Block until a background load (if any) is done; for tests."""
        if self._swap is not None:
            self._swap.wait_for_swap(timeout_s)

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        """Predict every post with text (swapping to a newly promoted registry version first, when one is ready)."""
        served = self._swap.for_batch() if self._swap is not None else self._fixed
        if served is None:
            raise RuntimeError("CryptoBertAnalyzer.analyze() called before load()")
        wanted = [i for i, p in enumerate(posts) if p.text.strip()]
        out: list[Prediction | None] = [None] * len(posts)
        if wanted:
            rows = served.classifier.predict_proba([posts[i].text for i in wanted])
            for i, row in zip(wanted, rows, strict=True):
                out[i] = Prediction.from_probabilities(row)
        return out
