"""LLaVA for memes: the prompt, loading (4-bit NF4 on CUDA), generation, and parsing of the model's JSON answer.

The model is asked for one JSON object, ``{"sentiment": "bearish"|"neutral"|"bullish", "ocr": "...",
"sarcastic": true|false}``. Parsing never raises: an answer that is not that object is read leniently (the first
JSON object anywhere in the output, loose values such as "Bullish" or "yes"), and failing that by the sentiment words
in it; each step down lowers the confidence, and an answer with nothing usable says so (``parsed = "none"``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bizstream.records import SENTIMENTS, Sentiment

log = logging.getLogger(__name__)

DEFAULT_MODEL = "llava-hf/llava-1.5-7b-hf"
MAX_OCR_CHARS = 500
MAX_PROMPT_TEXT_CHARS = 500
# LLaVA-1.5's conversation format; <image> is expanded by the processor into the image's patch tokens.
PROMPT = (
    "USER: <image>\n"
    "This image was posted with the text below on a crypto trading forum. Answer with one JSON object and nothing "
    'else: {{"sentiment": "bearish" or "neutral" or "bullish", "ocr": "the text written in the image", '
    '"sarcastic": true or false}}. sentiment is the meme\'s attitude toward the coin; sarcastic is whether the post '
    "means the opposite of what it says.\n"
    "Post text: {text}\n"
    "ASSISTANT:"
)
CONFIDENCE = {"strict": 0.8, "lenient": 0.6, "words": 0.45}  # LLaVA's answer carries no calibrated probability
_SENTIMENT_WORDS = {
    Sentiment.BEARISH: ("bearish", "bear", "negative", "sell", "dump"),
    Sentiment.NEUTRAL: ("neutral", "mixed", "unclear"),
    Sentiment.BULLISH: ("bullish", "bull", "positive", "buy", "moon"),
}
_TRUE = {"true", "yes", "1", "sarcastic"}
_FALSE = {"false", "no", "0", "not sarcastic"}


def prompt_for(text: str) -> str:
    """The prompt for one post (its text shortened and kept on one line)."""
    flat = " ".join(text.split())[:MAX_PROMPT_TEXT_CHARS]
    return PROMPT.format(text=flat or "(none)")


@dataclass(frozen=True)
class Reading:
    """What was read from one answer; ``parsed`` is strict, lenient, words or none."""

    sentiment: Sentiment | None
    ocr: str
    sarcastic: bool | None
    parsed: str
    confidence: float


def parse_answer(answer: str) -> Reading:
    """Read the model's answer; never raises (see the module docstring)."""
    stripped = answer.strip()
    obj = _json_object(stripped)
    if obj is not None:
        sentiment = _sentiment(obj.get("sentiment"))
        sarcastic = _boolean(obj.get("sarcastic"))
        ocr = obj.get("ocr")
        ocr_text = ocr[:MAX_OCR_CHARS] if isinstance(ocr, str) else ""
        strict = (set(obj) == {"sentiment", "ocr", "sarcastic"} and isinstance(obj.get("sentiment"), str)
                  and obj["sentiment"] in {s.value for s in SENTIMENTS} and isinstance(obj.get("sarcastic"), bool)
                  and isinstance(ocr, str) and stripped.startswith("{") and stripped.endswith("}"))  # fmt: skip
        if sentiment is not None:
            kind = "strict" if strict else "lenient"
            return Reading(sentiment, ocr_text, sarcastic, kind, CONFIDENCE[kind])
    found = _sentiment_in_words(stripped)
    if found is not None:
        return Reading(found, "", None, "words", CONFIDENCE["words"])
    return Reading(None, "", None, "none", 1.0 / 3.0)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)
        if isinstance(value, dict):
            return value
    except orjson.JSONDecodeError:
        pass
    for match in re.finditer(r"\{[^{}]*\}", text):  # the first flat object in prose or a code fence
        try:
            value = orjson.loads(match.group(0))
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _sentiment(value: Any) -> Sentiment | None:
    if not isinstance(value, str):
        return None
    word = value.strip().lower()
    for sentiment, words in _SENTIMENT_WORDS.items():
        if word in words:
            return sentiment
    return None


def _sentiment_in_words(text: str) -> Sentiment | None:
    lowered = text.lower()
    hits = {s for s, words in _SENTIMENT_WORDS.items() for w in words if re.search(rf"\b{w}\b", lowered)}
    return hits.pop() if len(hits) == 1 else None  # no guess when the words disagree


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def load_llava(
    model: str, device: str, quantize_4bit: bool, setting: str = "the model setting", adapter: Path | None = None
) -> tuple[Any, Any]:
    """(model, processor) from a folder or the local hub cache; 4-bit NF4 (bitsandbytes) when asked, on CUDA; with
    a LoRA adapter (bizstream_plugins.llava.training) applied when one is given (merged unless the base is 4-bit)."""
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from bizstream.learning.weights import offline_weights

    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False, "use_safetensors": True}
    if quantize_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.float16,
        )  # fmt: skip
        kwargs["device_map"] = {"": 0}
    else:
        kwargs["dtype"] = torch.float16 if device.startswith("cuda") else torch.float32
    with offline_weights(model, setting) as source:
        processor: Any = AutoProcessor.from_pretrained(source, local_files_only=True, trust_remote_code=False)  # type: ignore[no-untyped-call]
        llava: Any = LlavaForConditionalGeneration.from_pretrained(source, **kwargs)
    if not quantize_4bit:
        llava = llava.to(device)
    if adapter is not None:
        from peft import PeftModel

        llava = PeftModel.from_pretrained(llava, str(adapter), is_trainable=False)
        if not quantize_4bit:
            llava = llava.merge_and_unload()
    processor.tokenizer.padding_side = "left"  # batched generation continues every prompt from its last token
    return llava.eval(), processor


def generate(model: Any, processor: Any, images: Sequence[Any], texts: Sequence[str], max_new_tokens: int = 96) -> list[str]:
    """One decoded answer per (image, post text), greedy."""
    import torch

    inputs = processor(images=list(images), text=[prompt_for(t) for t in texts], return_tensors="pt", padding=True)
    inputs = inputs.to(model.device, dtype=model.dtype)  # casts only the floating tensors (the pixels)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=processor.tokenizer.pad_token_id)  # fmt: skip
    answers: list[str] = processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return answers
