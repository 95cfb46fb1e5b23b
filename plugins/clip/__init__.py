"""CLIP zero-shot image sentiment on the CPU (analyzer.py): bullish / neutral / bearish imagery from prompts. Runs only
where its weights are (a folder or the local cache; nothing is downloaded).

This module holds the plugin's hook implementations only. bizstream finds it through its entry point in
pyproject.toml (``clip = "bizstream_plugins.clip"``), as it finds any third-party plugin.
"""

from __future__ import annotations

from bizstream.hookspecs import hookimpl
from bizstream.settings import Settings
from bizstream_plugins.clip.analyzer import OPTIONS, ClipAnalyzer


@hookimpl(trylast=True)
def register_analyzers(settings: Settings) -> list[ClipAnalyzer]:
    """CLIP, configured from ``[plugins.options.clip]``."""
    return [ClipAnalyzer(settings.limits, **settings.plugins.options_for("clip", OPTIONS))]
