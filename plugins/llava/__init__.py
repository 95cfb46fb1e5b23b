"""LLaVA-1.5 on memes: loading and reading its JSON answer (model.py), QLoRA fine-tuning (training.py), the
analyzer (analyzer.py). Needs CUDA and its weights; otherwise it is unavailable and says why.

This module holds the plugin's hook implementations only. bizstream finds it through its entry point in
pyproject.toml (``llava = "bizstream_plugins.llava"``), as it finds any third-party plugin.
"""

from __future__ import annotations

from bizstream.hookspecs import hookimpl
from bizstream.settings import Settings
from bizstream_plugins.llava.analyzer import OPTIONS, LlavaAnalyzer


@hookimpl(trylast=True)
def register_analyzers(settings: Settings) -> list[LlavaAnalyzer]:
    """LLaVA, configured from ``[plugins.options.llava]``."""
    return [LlavaAnalyzer(settings.limits, **settings.plugins.options_for("llava", OPTIONS))]
