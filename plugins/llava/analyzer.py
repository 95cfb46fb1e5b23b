"""LLaVA-1.5 on memes: the image's sentiment toward the coin, the text written in it (OCR), and whether the post is
sarcastic, from one generated JSON answer (see bizstream/llava.py).

Runs only on posts with an image (others get ``None``), loaded safely by bizstream.images (byte and pixel limits,
paths under ``limits.image_root``, URLs only when allowed). ``llava-hf/llava-1.5-7b-hf`` by default, from a folder or
the local hub cache (nothing is downloaded), in 4-bit NF4 via bitsandbytes on CUDA. On a machine without CUDA it is
unavailable unless ``force = true`` (then unquantized on the CPU: slow, for small models and tests). An image that
is refused, or an answer that cannot be read, costs only that post's LLaVA output; a malformed answer lowers the
confidence and is logged.

Options (``[plugins.options.llava]``): model, adapter (LoRA adapters from bizstream_plugins.llava.training), force, device (auto|cuda|cpu), quantize_4bit (default: on CUDA),
max_new_tokens, batch_size.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bizstream.analyzer import Prediction
from bizstream.errors import AnalyzerUnavailable, ConfigError
from bizstream.images import loaded_images
from bizstream.records import SENTIMENTS, Post
from bizstream.settings import LimitSettings
from bizstream_plugins.llava.model import DEFAULT_MODEL, Reading, generate, load_llava, parse_answer

log = logging.getLogger(__name__)
OPTIONS = {"model", "adapter", "force", "device", "quantize_4bit", "max_new_tokens", "batch_size"}


def prediction_for(reading: Reading) -> Prediction:
    """The class read gets the reading's confidence, the other two share the rest; nothing read = uniform."""
    if reading.sentiment is None:
        probabilities = {s.value: 1.0 / 3.0 for s in SENTIMENTS}
    else:
        rest = (1.0 - reading.confidence) / 2.0
        probabilities = {s.value: reading.confidence if s is reading.sentiment else rest for s in SENTIMENTS}
    details: dict[str, str | float | bool] = {"parsed": reading.parsed, "ocr": reading.ocr}
    if reading.sarcastic is not None:
        details["sarcastic"] = reading.sarcastic
    return Prediction.from_probabilities(probabilities, details)


class LlavaAnalyzer:
    """LLaVA over the images of a batch, a few at a time."""

    name = "llava"

    def __init__(
        self, limits: LimitSettings, model: str = DEFAULT_MODEL, adapter: str = "", force: bool = False, device: str = "auto",
        quantize_4bit: bool | None = None, max_new_tokens: int = 96, batch_size: int = 4,
    ) -> None:  # fmt: skip
        if device not in ("auto", "cuda", "cpu"):
            raise ConfigError(f"[plugins.options.llava] device must be auto, cuda or cpu, got {device!r}")
        self.limits = limits
        self.model_ref = model
        self.adapter = Path(adapter).expanduser() if adapter else None
        self.force = force
        self.device = device
        self.quantize_4bit = quantize_4bit
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.version = model
        self._model: Any = None
        self._processor: Any = None

    def load(self) -> None:
        """Load on CUDA (4-bit), or on the CPU only when forced; AnalyzerUnavailable with the reason otherwise."""
        cuda = _cuda()
        device = self.device if self.device != "auto" else ("cuda" if cuda else "cpu")
        if device == "cuda" and not cuda:
            raise AnalyzerUnavailable("[plugins.options.llava] device is cuda but torch sees no CUDA device")
        if device == "cpu" and not self.force:
            raise AnalyzerUnavailable(
                "no CUDA device: LLaVA-1.5-7B in 4-bit needs a GPU; set [plugins.options.llava] force = true to run "
                "it unquantized on the CPU anyway (minutes per image for the 7B model)"
            )
        quantize = self.quantize_4bit if self.quantize_4bit is not None else device == "cuda"
        if quantize and device != "cuda":
            raise AnalyzerUnavailable("4-bit loading (bitsandbytes NF4) needs CUDA; set quantize_4bit = false on the CPU")
        self._model, self._processor = load_llava(self.model_ref, device, quantize, "[plugins.options.llava] model", self.adapter)
        self.version = f"{self.model_ref}{'+' + self.adapter.name if self.adapter else ''}{'@nf4' if quantize else ''}"

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        """A prediction for each post with an image that loads within the limits; None for the others."""
        if self._model is None:
            raise RuntimeError("LlavaAnalyzer.analyze() called before load()")
        out: list[Prediction | None] = [None] * len(posts)
        ready = loaded_images(posts, self.limits)  # a refused image costs only its post
        for start in range(0, len(ready), self.batch_size):
            chunk = ready[start : start + self.batch_size]
            answers = generate(self._model, self._processor, [img for _, img in chunk],
                               [posts[i].text for i, _ in chunk], self.max_new_tokens)  # fmt: skip
            for (i, _), answer in zip(chunk, answers, strict=True):
                reading = parse_answer(answer)
                if reading.parsed != "strict":
                    log.info("post %s: LLaVA answer read %s: %.200r", posts[i].id, reading.parsed, answer)
                out[i] = prediction_for(reading)
        return out


def _cuda() -> bool:
    """Whether torch sees a CUDA device. Without a GPU device node there is none, and a worker that cannot run LLaVA
    does not import torch to learn that (it costs ~300 MB of memory)."""
    if not any(Path("/dev").glob("nvidia[0-9]*")) and not Path("/dev/dxg").exists():  # dxg: CUDA under WSL2
        return False
    import torch

    return bool(torch.cuda.is_available())
