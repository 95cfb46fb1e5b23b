"""CryptoBERT with LoRA: the classifier and its ONNX serving (model.py), LoRA versions trained, gated and
registered (training.py), the INT8 export (export.py), the analyzer (analyzer.py). Its weights are optional: without
them it says so and the pipeline runs without it.

This module holds the plugin's hook implementations only. bizstream finds it through its entry point in
pyproject.toml (``cryptobert = "bizstream_plugins.cryptobert"``), as it finds any third-party plugin.
"""

from __future__ import annotations

from bizstream.hookspecs import hookimpl
from bizstream.settings import Settings
from bizstream_plugins.cryptobert.analyzer import OPTIONS, TRAINING_OPTIONS, CryptoBertAnalyzer
from bizstream_plugins.cryptobert.model import DEFAULT_MODEL, registry_at
from bizstream_plugins.cryptobert.training import CryptoBertTrainer


@hookimpl(trylast=True)
def register_analyzers(settings: Settings) -> list[CryptoBertAnalyzer]:
    """CryptoBERT, configured from ``[plugins.options.cryptobert]`` (model, adapter, registry, runtime, ...)."""
    options = settings.plugins.options_for("cryptobert", OPTIONS | TRAINING_OPTIONS)
    options = {k: v for k, v in options.items() if k in OPTIONS} | {"registry": settings.cryptobert_registry}
    return [CryptoBertAnalyzer(**options)]


@hookimpl(trylast=True)
def register_trainers(settings: Settings) -> list[CryptoBertTrainer]:
    """CryptoBERT's LoRA trainer: model and max_length, and epochs, lr and onnx, from ``[plugins.options.cryptobert]``."""
    o = settings.plugins.options_for("cryptobert", OPTIONS | TRAINING_OPTIONS)
    return [CryptoBertTrainer(registry_at(settings.cryptobert_registry), str(o.get("model", DEFAULT_MODEL)),
                              max_length=int(o.get("max_length", 128)), epochs=int(o.get("epochs", 1)),
                              lr=float(o.get("lr", 5e-4)), seed=settings.setfit.seed, export=bool(o.get("onnx", True)))]  # fmt: skip
