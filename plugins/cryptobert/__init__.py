"""CryptoBERT: a RoBERTa classifier trained on crypto social posts (ElKulako/cryptobert: Bearish/Neutral/Bullish).

Loads from ``[cryptobert] model`` (a folder, or a hub id already in the local Hugging Face cache: nothing is
downloaded at run time) with an optional LoRA adapter (``adapter``) merged in. Without the weights it reports itself
unavailable, says why, and the pipeline runs without it. score = P(bullish) - P(bearish).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bizstream.analyzer import Prediction
from bizstream.errors import ConfigError
from bizstream.hookspecs import hookimpl
from bizstream.learning.lora import load_classifier, predict_proba, with_adapter
from bizstream.records import Post
from bizstream.settings import Settings
from plugins.setfit import prediction_from

DEFAULT_MODEL = "ElKulako/cryptobert"


class CryptoBertAnalyzer:
    """A sequence classifier with the three sentiment labels, optionally with a LoRA adapter."""

    name = "cryptobert"

    def __init__(self, model: str = DEFAULT_MODEL, adapter: str = "", max_length: int = 128, batch_size: int = 32) -> None:
        self.model_ref = model
        self.adapter = adapter
        self.max_length = max_length
        self.batch_size = batch_size
        self.version = f"{model}{'+' + Path(adapter).name if adapter else ''}"
        self._model: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        """Load the weights (AnalyzerUnavailable with the reason when they are not on this machine)."""
        model, tokenizer = load_classifier(self.model_ref, self.max_length, setting="[plugins.options.cryptobert] model")
        if self.adapter:
            model = with_adapter(model, Path(self.adapter).expanduser())
        self._model, self._tokenizer = model, tokenizer

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        """Predict every post with text."""
        if self._model is None:
            raise RuntimeError("CryptoBertAnalyzer.analyze() called before load()")
        wanted = [i for i, p in enumerate(posts) if p.text.strip()]
        out: list[Prediction | None] = [None] * len(posts)
        if wanted:
            rows = predict_proba(self._model, self._tokenizer, [posts[i].text for i in wanted], self.batch_size)
            for i, row in zip(wanted, rows, strict=True):
                out[i] = prediction_from(row)
        return out


@hookimpl(trylast=True)
def register_analyzers(settings: Settings) -> list[CryptoBertAnalyzer]:
    """CryptoBERT, configured from ``[plugins.options.cryptobert]`` (model, adapter, max_length, batch_size)."""
    options = settings.plugins.options_for("cryptobert")
    unknown = set(options) - {"model", "adapter", "max_length", "batch_size"}
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)} in [plugins.options.cryptobert]")
    return [CryptoBertAnalyzer(**options)]
