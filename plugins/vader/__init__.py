"""VADER with a crypto / /biz/ slang lexicon (analyzer.py, slang.txt): fast, rule-based, no model weights.

This module holds the plugin's hook implementations only. bizstream finds it through its entry point in
pyproject.toml (``vader = "bizstream_plugins.vader"``), as it finds any third-party plugin.
"""

from __future__ import annotations

from bizstream.hookspecs import hookimpl
from bizstream.settings import Settings
from bizstream_plugins.vader.analyzer import OPTIONS, VaderAnalyzer


@hookimpl(trylast=True)
def register_analyzers(settings: Settings) -> list[VaderAnalyzer]:
    """The VADER analyzer, configured from ``[plugins.options.vader]``."""
    return [VaderAnalyzer(**settings.plugins.options_for("vader", OPTIONS))]
