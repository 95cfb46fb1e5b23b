"""Reading the text in a meme with Tesseract: preprocessing, and one bounded Tesseract run per candidate image.

Tesseract runs as its own process (pytesseract) on a PNG this module writes from an image that bizstream.images has
already loaded within its limits; a run past its time budget is killed. The preprocessing steps are measured on the
project's rendered memes by ``bench/ocr.py`` (character error rate for each step alone and in combination); the
default, DEFAULT_STEPS, is the best there (CER 0.021, against 0.16 with none and 0.042 with all four, at ~2.2 images/s
on 2 cores):

- ``gray``: luminance only;
- ``upscale``: small images enlarged (Tesseract reads glyphs ~20-30 px high best), up to MAX_OCR_PIXELS;
- ``binarize``: Otsu's threshold, dark text on a light ground;
- ``captions``: a second candidate that keeps only near-white pixels (white meme captions, white-on-black bands) as
  black on white; of the candidates, the reading Tesseract is more confident in wins.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

STEPS = ("gray", "upscale", "binarize", "captions")
DEFAULT_STEPS = ("upscale", "captions")
MAX_OCR_PIXELS = 4_000_000  # an upscaled image stays below this
TARGET_SHORT_SIDE = 720  # images with a shorter side below this are enlarged (at most 3x)
MAX_OCR_CHARS = 500  # what a reading keeps (as LLaVA's OCR answer)
MIN_WORD_CONFIDENCE = 40.0  # Tesseract's per-word confidence (0-100) below which a word is noise
PSM = 3  # Tesseract's page segmentation: 3 (automatic) read the rendered memes far better than 11 (sparse text)


@dataclass(frozen=True)
class Reading:
    """What Tesseract read: the words in reading order, their mean confidence (0-1), and how long it took."""

    text: str
    confidence: float
    seconds: float


def candidates(image: Image.Image, steps: Sequence[str] = DEFAULT_STEPS) -> list[Image.Image]:
    """The images Tesseract is run on, after the given preprocessing steps (in STEPS' order)."""
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown preprocessing step(s) {sorted(unknown)}; known: {', '.join(STEPS)}")
    rgb = image.convert("RGB")
    if "upscale" in steps:
        rgb = _upscaled(rgb)
    base = rgb.convert("L") if "gray" in steps or "binarize" in steps else rgb
    if "binarize" in steps:
        base = _otsu(base)
    out = [base]
    if "captions" in steps:
        pixels = np.asarray(rgb, dtype=np.int16)
        white = (pixels.min(axis=2) > 190) & (pixels.max(axis=2) - pixels.min(axis=2) < 40)
        out.append(Image.fromarray(np.where(white, 0, 255).astype(np.uint8), mode="L"))
    return out


def tesseract() -> Any:  # pytesseract ships no type information
    """pytesseract, imported without pandas. It imports pandas whenever pandas is installed (setfit's dependencies
    install it), only to offer DataFrame output, which this plugin never asks for: that alone put ~65 MiB into every
    worker serving the defaults (bench/memory.py). Where pandas is already imported, nothing changes."""
    if "pytesseract" in sys.modules or "pandas" in sys.modules:
        import pytesseract

        return pytesseract
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `from pandas import ...` raises ModuleNotFoundError
    try:
        import pytesseract
    finally:
        del sys.modules["pandas"]
    return pytesseract


def read(image: Image.Image, timeout_s: float, steps: Sequence[str] = DEFAULT_STEPS, lang: str = "eng", psm: int = PSM) -> Reading:
    """The most confident reading of the candidates, within ``timeout_s`` for all of them (TimeoutError past it)."""
    pytesseract = tesseract()
    started = time.perf_counter()
    best = Reading("", 0.0, 0.0)
    for candidate in candidates(image, steps):
        left = timeout_s - (time.perf_counter() - started)
        if left <= 0:
            raise TimeoutError(f"OCR took more than {timeout_s} s")
        try:
            data = pytesseract.image_to_data(candidate, lang=lang, config=f"--psm {psm} --oem 1", timeout=left, output_type=pytesseract.Output.DICT)
        except RuntimeError as exc:  # pytesseract kills the process and says "Tesseract process timeout"
            if "timeout" in str(exc).lower():
                raise TimeoutError(f"OCR took more than {timeout_s} s") from None
            raise
        words = [(str(w).strip(), float(c)) for w, c in zip(data["text"], data["conf"], strict=True)
                 if str(w).strip() and float(c) >= MIN_WORD_CONFIDENCE]  # fmt: skip
        if words:
            confidence = sum(c for _, c in words) / len(words) / 100.0
            # A reading with more confident words wins; confidence alone would prefer one lucky word.
            if confidence * len(words) > best.confidence * len(best.text.split()):
                best = Reading(" ".join(w for w, _ in words)[:MAX_OCR_CHARS], confidence, 0.0)
    return Reading(best.text, best.confidence, time.perf_counter() - started)


def _upscaled(image: Image.Image) -> Image.Image:
    width, height = image.size
    factor = min(3.0, TARGET_SHORT_SIDE / max(1, min(width, height)), (MAX_OCR_PIXELS / max(1, width * height)) ** 0.5)
    if factor <= 1.05:
        return image
    return image.resize((round(width * factor), round(height * factor)), Image.Resampling.LANCZOS)


def _otsu(gray: Image.Image) -> Image.Image:
    """Otsu's threshold; the result has the majority (the ground) white, so the text is dark."""
    values = np.asarray(gray, dtype=np.uint8)
    histogram = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    total = values.size
    weights = np.cumsum(histogram)
    means = np.cumsum(histogram * np.arange(256))
    between = (means[-1] * weights - means * total) ** 2 / np.maximum(weights * (total - weights), 1e-9)
    threshold = int(np.argmax(between))
    binary = values > threshold
    if binary.mean() < 0.5:  # mostly dark: light text on a dark ground
        binary = ~binary
    return Image.fromarray(np.where(binary, 255, 0).astype(np.uint8), mode="L")
