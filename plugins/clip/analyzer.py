"""CLIP zero-shot on a post's image: bullish, neutral or bearish imagery, on the CPU.

Each class has prompts (``[plugins.options.clip.prompts]``, defaults in PROMPTS): their text embeddings are averaged
into one direction per class when the model loads, and an image's probabilities are the softmax of CLIP's scaled
cosine similarity to the three directions. Weights load from a folder or the local Hugging Face cache only
(``local_files_only``, safetensors, no remote code); without them the analyzer is unavailable and says which setting
to change. Images are loaded by bizstream.images (byte, pixel and path limits; URLs only when allowed); a refused
image costs only that post's CLIP output. Posts without an image get ``None``.

Options (``[plugins.options.clip]``): model (a folder or a hub id already in the local cache), prompts (a table of
bearish / neutral / bullish lists), batch_size (8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bizstream.analyzer import Prediction
from bizstream.errors import ConfigError
from bizstream.images import loaded_images
from bizstream.learning.weights import offline_weights
from bizstream.records import SENTIMENTS, Post
from bizstream.settings import LimitSettings

OPTIONS = {"model", "prompts", "batch_size"}
DEFAULT_MODEL = "openai/clip-vit-base-patch32"
PROMPTS: dict[str, list[str]] = {
    "bearish": ["a red candlestick chart crashing down", "a stock market crash, it's over", "a sad trader who lost all his money",
                "a bear market meme", "a price chart falling to zero"],
    "neutral": ["a screenshot of text", "an ordinary photo", "a flat sideways price chart", "a diagram", "a logo"],
    "bullish": ["a green candlestick chart going up", "a rocket going to the moon", "a happy trader celebrating big gains",
                "a bull market meme", "a lamborghini bought with crypto profits"],
}  # fmt: skip


class ClipAnalyzer:
    """Zero-shot image sentiment with a CLIP model."""

    name = "clip"

    def __init__(self, limits: LimitSettings, model: str = DEFAULT_MODEL, prompts: Mapping[str, Sequence[str]] | None = None,
                 batch_size: int = 8) -> None:  # fmt: skip
        prompts = dict(PROMPTS if prompts is None else prompts)
        labels = [s.value for s in SENTIMENTS]
        if set(prompts) != set(labels) or not all(isinstance(v, (list, tuple)) and v and all(isinstance(p, str) and p.strip() for p in v) for v in prompts.values()):
            raise ConfigError(f"[plugins.options.clip] prompts must give each of {', '.join(labels)} a non-empty list of texts, got {prompts!r}")
        if batch_size < 1:
            raise ConfigError(f"[plugins.options.clip] batch_size must be >= 1, got {batch_size}")
        self.limits = limits
        self.model_ref = model
        self.prompts = {label: [str(p) for p in prompts[label]] for label in labels}
        self.batch_size = batch_size
        self.version = model
        self._model: Any = None
        self._images: Any = None
        self._classes: Any = None  # (3, dim) unit vectors, in SENTIMENTS order

    def load(self) -> None:
        """Load the model from a folder or the local cache and embed the prompts; unavailable without weights."""
        with offline_weights(self.model_ref, "[plugins.options.clip] model") as source:  # before torch is imported
            import torch
            from transformers import AutoTokenizer, CLIPImageProcessorPil, CLIPModel

            model = CLIPModel.from_pretrained(source, local_files_only=True, use_safetensors=True, trust_remote_code=False)
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, trust_remote_code=False)
            images = CLIPImageProcessorPil.from_pretrained(source, local_files_only=True, trust_remote_code=False)
        model.eval()  # type: ignore[no-untyped-call]
        directions = []
        with torch.inference_mode():
            for label in (s.value for s in SENTIMENTS):
                encoded = tokenizer(self.prompts[label], padding=True, truncation=True, return_tensors="pt")
                text = _unit(_features(model.get_text_features(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])))
                directions.append(_unit(text.mean(dim=0, keepdim=True))[0])
        self._classes = torch.stack(directions)
        self._model, self._images = model, images
        self.version = f"clip:{self.model_ref}"

    def analyze(self, posts: Sequence[Post]) -> list[Prediction | None]:
        """Probabilities for each post with an image that loads within the limits; None for the others."""
        if self._model is None:
            raise RuntimeError("ClipAnalyzer.analyze() called before load()")
        out: list[Prediction | None] = [None] * len(posts)
        ready = loaded_images(posts, self.limits)  # a refused image costs only its post
        for start in range(0, len(ready), self.batch_size):
            chunk = ready[start : start + self.batch_size]
            for (i, _), row in zip(chunk, self.probabilities([image for _, image in chunk]), strict=True):
                out[i] = Prediction.from_probabilities(row)
        return out

    def probabilities(self, images: Sequence[Any]) -> list[list[float]]:
        """(bearish, neutral, bullish) probabilities for each PIL image."""
        import torch

        with torch.inference_mode():
            pixels = self._images(images=list(images), return_tensors="pt")["pixel_values"]
            embedded = _unit(_features(self._model.get_image_features(pixel_values=pixels)))
            logits = self._model.logit_scale.exp() * embedded @ self._classes.T
            return [[float(p) for p in row] for row in logits.softmax(dim=-1)]


def _features(output: Any) -> Any:
    """The projected embeddings (transformers 5 returns them as a model output's pooler_output)."""
    return getattr(output, "pooler_output", output)


def _unit(x: Any) -> Any:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
