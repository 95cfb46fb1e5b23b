"""OCR with Tesseract (reader.py: preprocessing and bounded runs; analyzer.py: the analyzer): the text in a post's
image, for the sarcasm fuser's OCR input. Needs the tesseract program (scripts/install.sh installs it).

This module holds the plugin's hook implementations only. bizstream finds it through its entry point in
pyproject.toml (``ocr = "bizstream_plugins.ocr"``), as it finds any third-party plugin.
"""

from __future__ import annotations

from bizstream.hookspecs import hookimpl
from bizstream.settings import Settings
from bizstream_plugins.ocr.analyzer import OPTIONS, OcrAnalyzer


@hookimpl(trylast=True)
def register_analyzers(settings: Settings) -> list[OcrAnalyzer]:
    """The OCR analyzer, configured from ``[plugins.options.ocr]``."""
    return [OcrAnalyzer(settings.limits, **settings.plugins.options_for("ocr", OPTIONS))]
