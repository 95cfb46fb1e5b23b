"""Sarcasm fusion: the rules (rules.py), the text-only sarcasm head (model.py, trained by training.py) and the fuser
that applies them to Scores (fuser.py).

This module holds the plugin's hook implementations only. bizstream finds it through its entry point in
pyproject.toml (``sarcasm = "bizstream_plugins.sarcasm"``), as it finds any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bizstream.analyzer import Analyzer
from bizstream.hookspecs import hookimpl
from bizstream.settings import Settings
from bizstream_plugins.sarcasm.fuser import OPTIONS, WEIGHT_OPTIONS, SarcasmFuser
from bizstream_plugins.sarcasm.model import default_head_path
from bizstream_plugins.sarcasm.rules import ModalityWeights


@hookimpl(trylast=True)
def register_fusers(settings: Settings, analyzers: Mapping[str, Analyzer]) -> list[SarcasmFuser]:
    """The sarcasm fuser, configured from ``[plugins.options.sarcasm]``; OCR text is read by the analyzer named in
    ``ocr_analyzer`` (default VADER) when the host has it."""
    options = settings.plugins.options_for("sarcasm", OPTIONS)
    weights = ModalityWeights(**{k: float(v) for k, v in options.items() if k in WEIGHT_OPTIONS})
    text_model = Path(options.get("text_model") or default_head_path(settings)).expanduser()
    ocr_scorer = analyzers.get(str(options.get("ocr_analyzer", "vader")))
    return [SarcasmFuser(settings.fusion, weights, options.get("image_analyzers", ["llava", "clip"]), text_model, ocr_scorer,
                         str(options.get("ocr_reader", "ocr")))]  # fmt: skip
