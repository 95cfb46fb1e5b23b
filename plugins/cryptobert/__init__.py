"""CryptoBERT with LoRA: the classifier and its ONNX serving (model.py), LoRA versions trained, gated and
registered (training.py), the INT8 export (export.py), the analyzer (analyzer.py). Its weights are optional: without
them it says so and the pipeline runs without it.

This module holds the plugin's hook implementations only. bizstream finds it through its entry point in
pyproject.toml (``cryptobert = "bizstream_plugins.cryptobert"``), as it finds any third-party plugin.
"""

from __future__ import annotations

from bizstream.hookspecs import hookimpl
from bizstream.settings import Settings
from bizstream_plugins.cryptobert.analyzer import OPTIONS, CryptoBertAnalyzer


@hookimpl(trylast=True)
def register_analyzers(settings: Settings) -> list[CryptoBertAnalyzer]:
    """CryptoBERT, configured from ``[plugins.options.cryptobert]`` (model, adapter, registry, runtime, ...)."""
    options = settings.plugins.options_for("cryptobert", OPTIONS)
    options["registry"] = settings.cryptobert_registry
    return [CryptoBertAnalyzer(**options)]
