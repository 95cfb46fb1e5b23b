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
from pathlib import Path
from typing import Any

import numpy as np

from bizstream.analyzer import Prediction
from bizstream.errors import AnalyzerUnavailable, ConfigError
from bizstream.hookspecs import hookimpl
from bizstream.learning.cryptobert import ADAPTER, DEFAULT_MODEL, ONNX_INT8, OnnxClassifier, registry_at
from bizstream.records import Post
from bizstream.settings import Settings
from plugins.setfit import prediction_from

__all__ = ["DEFAULT_MODEL", "CryptoBertAnalyzer", "register_analyzers"]
RUNTIMES = ("auto", "torch", "onnx-int8")
OPTIONS = {"model", "adapter", "registry", "runtime", "max_length", "batch_size"}


class _Torch:
    def __init__(self, model: Any, tokenizer: Any, batch_size: int) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from bizstream.learning.lora import predict_proba

        return predict_proba(self.model, self.tokenizer, texts, self.batch_size)


class CryptoBertAnalyzer:
    """A sequence classifier with the three sentiment labels: adapter, registry version, or the base model."""

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
        self.version = model
        self.serving_runtime = "-"
        self._classifier: _Torch | OnnxClassifier | None = None

    def load(self) -> None:
        """Load what serves (AnalyzerUnavailable with the reason when its weights are not on this machine)."""
        serving = self.registry.serving() if self.registry and not self.adapter else None
        if serving is not None and self.registry is not None:
            version_dir = self.registry.version_dir(serving)
            onnx_ok = (version_dir / ONNX_INT8).is_file()
            if self.runtime == "onnx-int8" and not onnx_ok:
                raise AnalyzerUnavailable(f"runtime is onnx-int8 but {version_dir / ONNX_INT8} does not exist")
            if self.runtime != "torch" and onnx_ok:
                params = self.registry.metadata(serving).params
                self._install(OnnxClassifier(version_dir, params, self.batch_size), serving, "onnx-int8")
                return
            self._install(self._torch(version_dir / ADAPTER), serving, "torch")
            return
        adapter = Path(self.adapter).expanduser() if self.adapter else None
        self._install(self._torch(adapter), f"{self.model_ref}+{adapter.name}" if adapter else self.model_ref, "torch")

    def _torch(self, adapter: Path | None) -> _Torch:
        from bizstream.learning.lora import load_classifier, with_adapter

        model, tokenizer = load_classifier(self.model_ref, self.max_length, setting="[plugins.options.cryptobert] model")
        if adapter is not None:
            model = with_adapter(model, adapter)
        return _Torch(model, tokenizer, self.batch_size)

    def _install(self, classifier: _Torch | OnnxClassifier, version: str, runtime: str) -> None:
        self._classifier, self.version, self.serving_runtime = classifier, version, runtime

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        """Predict every post with text."""
        if self._classifier is None:
            raise RuntimeError("CryptoBertAnalyzer.analyze() called before load()")
        wanted = [i for i, p in enumerate(posts) if p.text.strip()]
        out: list[Prediction | None] = [None] * len(posts)
        if wanted:
            rows = self._classifier.predict_proba([posts[i].text for i in wanted])
            for i, row in zip(wanted, rows, strict=True):
                out[i] = prediction_from(row)
        return out


@hookimpl(trylast=True)
def register_analyzers(settings: Settings) -> list[CryptoBertAnalyzer]:
    """CryptoBERT, configured from ``[plugins.options.cryptobert]`` (model, adapter, registry, runtime, ...)."""
    options = dict(settings.plugins.options_for("cryptobert"))
    unknown = set(options) - OPTIONS
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)} in [plugins.options.cryptobert]")
    options["registry"] = settings.cryptobert_registry
    return [CryptoBertAnalyzer(**options)]
