"""OCR on a post's image with Tesseract, for the CPU path of images (bizstream.plugins routes images to CLIP + OCR
where LLaVA cannot run).

OCR reads; it does not judge. Its prediction for a post with an image has uniform probabilities (so fusion weight
``ocr`` is 0 by default) and carries the text it read in ``details["ocr"]`` (with ``ocr_confidence``, Tesseract's mean
word confidence). The sarcasm fuser scores that text with its OCR scorer (VADER and its slang) at the OCR weight, and
weighs it against the image's reading (CLIP) to spot a caption that says the opposite of the picture. Images are
loaded by bizstream.images (byte, pixel and path limits; URLs only when allowed); a refused image or a read past
``timeout_s`` costs only that post's OCR (``None``), logged. Posts without an image get ``None``.

Images of a batch are read a few at a time (``workers`` Tesseract processes at once).

Options (``[plugins.options.ocr]``): timeout_s (per image, 5.0), steps (the preprocessing: reader.DEFAULT_STEPS, of
reader.STEPS), lang ("eng"), workers (Tesseract processes at once; default: the CPU count, at most 4).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from bizstream.analyzer import Prediction
from bizstream.errors import AnalyzerUnavailable, ConfigError, ImageRefused
from bizstream.images import load_image
from bizstream.records import Post
from bizstream.settings import LimitSettings
from bizstream_plugins.ocr.reader import DEFAULT_STEPS, STEPS, Reading, read, tesseract

log = logging.getLogger(__name__)
OPTIONS = {"timeout_s", "steps", "lang", "workers"}
UNIFORM = (1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0)


class OcrAnalyzer:
    """Tesseract over the images of a batch, a few at a time, each within its time budget."""

    name = "ocr"

    def __init__(self, limits: LimitSettings, timeout_s: float = 5.0, steps: Sequence[str] = DEFAULT_STEPS, lang: str = "eng",
                 workers: int | None = None) -> None:  # fmt: skip
        if timeout_s <= 0:
            raise ConfigError(f"[plugins.options.ocr] timeout_s must be > 0, got {timeout_s}")
        unknown = set(steps) - set(STEPS)
        if unknown:
            raise ConfigError(f"[plugins.options.ocr] steps: unknown {sorted(unknown)}; known: {', '.join(STEPS)}")
        workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        if workers < 1:
            raise ConfigError(f"[plugins.options.ocr] workers must be >= 1, got {workers}")
        self.workers = workers
        self.limits = limits
        self.timeout_s = float(timeout_s)
        self.steps = tuple(steps)
        self.lang = lang
        self.version = "tesseract"

    def load(self) -> None:
        """Tesseract and its language data must be installed; unavailable, with what to install, otherwise."""
        try:
            pytesseract = tesseract()
        except ImportError as exc:
            raise AnalyzerUnavailable(f"pytesseract is not installed ({exc}); pip install pytesseract") from None
        if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
            raise AnalyzerUnavailable("the tesseract program is not installed (Debian: apt-get install tesseract-ocr "
                                      "tesseract-ocr-eng; scripts/install.sh does it)")  # fmt: skip
        if self.lang not in pytesseract.get_languages(config=""):
            raise AnalyzerUnavailable(f"Tesseract has no {self.lang!r} language data (Debian: tesseract-ocr-{self.lang})")
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # one core per image: Tesseract's threads only contend here
        self.version = f"tesseract-{pytesseract.get_tesseract_version()}"

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        """The text in each post's image; None for posts without one, or whose image is refused or takes too long."""
        out: list[Prediction | None] = [None] * len(posts)
        with_images = [i for i, post in enumerate(posts) if post.image is not None]
        if not with_images:  # most posts: no threads started for nothing
            return out
        with ThreadPoolExecutor(min(self.workers, len(with_images)), thread_name_prefix="ocr") as pool:  # each waits on a Tesseract process
            for i, reading in zip(with_images, pool.map(self._read, [posts[i] for i in with_images]), strict=True):
                if reading is not None:
                    out[i] = Prediction.from_probabilities(UNIFORM, {"ocr": reading.text, "ocr_confidence": round(reading.confidence, 3)})
        return out

    def _read(self, post: Post) -> Reading | None:
        assert post.image is not None
        try:
            return read(load_image(post.image, self.limits), self.timeout_s, self.steps, self.lang)
        except ImageRefused as exc:
            log.warning("post %s: image refused: %s", post.id, exc)
        except TimeoutError as exc:
            log.warning("post %s: %s (plugins.options.ocr.timeout_s); it goes without OCR", post.id, exc)
        return None
