"""The sarcasm fuser: refines the fused Score of posts with an image (or a text sarcasm signal) with the rules in
rules.py — text 0.5, image 0.3, thread context 0.1, OCR 0.1, and the text inverted when the evidence says the post is
sarcastic.

Per post, from the Score the analyzers produced:
- text: the fusion-weighted text analyzers (every analyzer but the image ones);
- image: the image analyzer's probabilities (LLaVA on a GPU, CLIP on the CPU: the first of ``image_analyzers`` with a
  result); LLaVA's ``sarcastic`` answer is sarcasm evidence at its confidence;
- OCR: the text read in the image — LLaVA's answer, else the OCR analyzer's (Tesseract, ``ocr_reader``) — scored by
  the analyzer named in ``ocr_analyzer`` (VADER with the slang lexicon by default), which the host hands over (a
  plugin never imports another);
- context: the Score of the post this one replies to, when the pipeline has it;
- text sarcasm: P(sarcastic) from the model ``bizstream train sarcasm`` wrote (used when its file exists), moved so
  that its decision threshold for the deployment's base rate (sarcasm.json) falls on ``invert_at``.
Posts with neither an image result, nor text read in an image, nor a text sarcasm signal keep the Score they have. The fuser's own part is
recorded under ``sarcasm`` in the Score (inverted or not, which modalities counted), and Score.sarcasm_probability
is set.

Options (``[plugins.options.sarcasm]``): image_analyzers (["llava", "clip"]), ocr_reader ("ocr"), ocr_analyzer ("vader"), text_model (default
<cache>/models/sarcasm/head.safetensors), and the ModalityWeights fields (text, image, context, ocr, incongruity,
incongruity_probability, invert_at).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bizstream.analyzer import Analyzer, Context, Prediction
from bizstream.errors import AnalyzerUnavailable
from bizstream.pipeline import weighted_probabilities
from bizstream.records import SENTIMENTS, AnalyzerResult, Post, Score
from bizstream.settings import FusionSettings
from bizstream_plugins.sarcasm.rules import ModalityWeights, Probs, Signals, fuse

WEIGHT_OPTIONS = frozenset(f.name for f in dataclasses.fields(ModalityWeights))
OPTIONS = WEIGHT_OPTIONS | {"image_analyzers", "ocr_reader", "ocr_analyzer", "text_model"}  # [plugins.options.sarcasm]


def _probs(probabilities: dict[str, float] | None) -> Probs | None:
    if not probabilities:
        return None
    bearish, neutral, bullish = (float(probabilities[s.value]) for s in SENTIMENTS)
    return (bearish, neutral, bullish)


class SarcasmFuser:
    """The sarcasm-aware multimodal fusion as a pipeline fuser."""

    name = "sarcasm"
    version = "rules-1"

    def __init__(
        self, fusion: FusionSettings, weights: ModalityWeights | None = None, image_analyzers: Sequence[str] = ("llava", "clip"),
        text_model: Path | None = None, ocr_scorer: Analyzer | None = None, ocr_reader: str = "ocr",
    ) -> None:  # fmt: skip
        self.fusion = fusion
        self.weights = weights or ModalityWeights()
        self.image_analyzers = tuple(image_analyzers)
        self.text_model = text_model
        self.ocr_scorer = ocr_scorer  # a loaded analyzer from the host; None: OCR text does not count
        self.ocr_reader = ocr_reader  # the analyzer whose details["ocr"] is the text in the image (when LLaVA's is not)
        self._sarcasm_head: Any = None
        self._encoder: Any = None

    def load(self) -> None:
        """The text sarcasm head, when its file exists (the OCR scorer came loaded from the host)."""
        if self.text_model is not None and self.text_model.is_file():
            from bizstream.learning.embeddings import TorchEncoder
            from bizstream_plugins.sarcasm.model import SarcasmHead
            from bizstream_plugins.sarcasm.training import INFO, body_for

            head = SarcasmHead.load(self.text_model)
            info_file = self.text_model.parent / INFO
            info = json.loads(info_file.read_text()) if info_file.is_file() else {}
            if info and hashlib.sha256(self.text_model.read_bytes()).hexdigest() != info.get("head_sha256"):
                raise AnalyzerUnavailable(f"{self.text_model} does not match the sha256 in {info_file}; train it again")
            if "threshold" in info:  # the decision threshold for the deployment's base rate is where the text inverts
                head = head.deciding_at(float(info["threshold"]), self.weights.invert_at)
            self._encoder = TorchEncoder(body_for(self.text_model.parent, info))
            self._sarcasm_head = head
            self.version = f"rules-1+{self.text_model.parent.name}/{self.text_model.name}"

    def refine(self, items: Sequence[tuple[Post, Score, Context]]) -> list[Score | None]:
        """A sarcasm-aware Score for each post with an image result or a text sarcasm signal; None for the rest."""
        started = time.perf_counter()
        out: list[Score | None] = [None] * len(items)
        text_sarcasm: dict[int, float] = {}
        if self._sarcasm_head is not None:
            wanted = [i for i, (post, _, _) in enumerate(items) if post.text.strip()]
            if wanted:
                p = self._sarcasm_head.probability(self._encoder.encode([items[i][0].text for i in wanted]))
                text_sarcasm = {i: float(value) for i, value in zip(wanted, p, strict=True)}
        images = {i: r for i, (_, score, _) in enumerate(items) if (r := self._image_result(score)) is not None}
        ocr_texts = {i: t for i, (_, score, _) in enumerate(items) if (t := self._ocr_text(score, images.get(i)))} if self.ocr_scorer is not None else {}
        todo = sorted(images.keys() | text_sarcasm.keys() | ocr_texts.keys())  # text-only posts without a signal: nothing to do
        if not todo:
            return out
        ocr: dict[int, Prediction | None] = {}
        if ocr_texts and self.ocr_scorer is not None:
            read = self.ocr_scorer.analyze([Post(id=str(i), text=t, thread_id="ocr") for i, t in ocr_texts.items()])
            ocr = dict(zip(ocr_texts, read, strict=True))
        latency_ms = 1000.0 * (time.perf_counter() - started) / len(todo)
        for i in todo:
            _, score, context = items[i]
            image = images.get(i)
            said_sarcastic = (image.details or {}).get("sarcastic") if image else None
            ocr_prediction = ocr.get(i)
            signals = Signals(
                text=_probs(weighted_probabilities(score.analyzers, self.fusion, skip={*self.image_analyzers, self.ocr_reader, self.name})),
                image=_probs(image.probabilities) if image else None,
                context=_probs(context.parent.probabilities) if context.parent else None,
                ocr=_probs(dict(ocr_prediction.probabilities)) if ocr_prediction is not None else None,
                image_sarcasm=(image.confidence or 0.0) * float(said_sarcastic) if image and said_sarcastic is not None else None,
                text_sarcasm=text_sarcasm.get(i),
            )  # fmt: skip
            fused = fuse(signals, self.weights)
            part = AnalyzerResult(self.name, self.version, latency_ms, score=fused.score, label=fused.label,
                                  confidence=fused.confidence, probabilities=fused.probabilities,
                                  details={"sarcasm_probability": fused.sarcasm_probability, "inverted": fused.inverted,
                                           "used": ",".join(sorted(fused.used))})  # fmt: skip
            out[i] = dataclasses.replace(
                score, score=fused.score, label=fused.label, confidence=fused.confidence,
                probabilities=fused.probabilities, sarcasm_probability=fused.sarcasm_probability,
                analyzers={**score.analyzers, self.name: part},
            )  # fmt: skip
        return out

    def _ocr_text(self, score: Score, image: AnalyzerResult | None) -> str:
        """The text read in the post's image: the image analyzer's (LLaVA), else the OCR reader's."""
        for result in (image, score.analyzers.get(self.ocr_reader)):
            if result is not None and result.error is None:
                text = str((result.details or {}).get("ocr", "")).strip()
                if text:
                    return text
        return ""

    def _image_result(self, score: Score) -> AnalyzerResult | None:
        for name in self.image_analyzers:
            result = score.analyzers.get(name)
            if result is not None and result.error is None and result.probabilities:
                return result
        return None
