"""A tiny CLIP built from a config (random weights, a word-level tokenizer, 32x32 images), saved to a folder as a real
one is: the tests and bench/ocr.py load it through the analyzer's real loading code. ``teach`` gives it a few seconds
of contrastive training on rendered red and green charts, so that it reads a crash as bearish and a rally as bullish
(enough for tests of the fusion, nothing more). Never a model to score real posts with.
"""

from __future__ import annotations

import re
from pathlib import Path

from bizstream.memes import Meme, render
from bizstream_plugins.clip.analyzer import PROMPTS, _features, _unit

SIZE = 32
STEPS = 30


def build(folder: Path, teach: bool = False, seed: int = 0) -> Path:
    """Write the tiny CLIP (model.safetensors, tokenizer, image processor) into ``folder``; returns it."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, PreTrainedTokenizerFast

    words = sorted({w for prompts in PROMPTS.values() for p in prompts for w in _words(p)})
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, **{w: i + 4 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    # CLIP pools the text at its end-of-text token: every prompt must carry one, as the real tokenizer's do.
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>")  # type: ignore[no-untyped-call]
    images = CLIPImageProcessorPil(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 32, "pad_token_id": 0, "bos_token_id": 1,
                     "eos_token_id": 2},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": SIZE, "patch_size": 8},
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = CLIPModel(config)
    if teach:
        _teach(model, fast, images, seed)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    fast.save_pretrained(folder)
    images.save_pretrained(folder)
    return folder


def _words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def _teach(model: object, tokenizer: object, images: object, seed: int) -> None:
    """Steps of the zero-shot objective itself: a rendered red chart should be nearest the bearish prompts' mean
    direction, a green one the bullish, a photo the neutral (captions on some, so a caption does not decide)."""
    import torch

    scenes = {"bearish": "red_chart", "neutral": "photo", "bullish": "green_chart"}  # in SENTIMENTS order
    captions = ["", "gm", "to the moon", "it's over"]
    pictures = [(render(Meme(captions[k % 4], scene, ("impact", "bar", "inverted")[k % 3], seed=seed + k)), target)  # type: ignore[arg-type]
                for target, scene in enumerate(scenes.values()) for k in range(8)]  # fmt: skip
    with torch.no_grad():  # the prompts' directions stay put (trained too, they collapse into one); the eye learns
        directions = _unit(torch.stack([_unit(_features(model.get_text_features(**tokenizer(PROMPTS[label], padding=True, return_tensors="pt")))).mean(dim=0)  # type: ignore[attr-defined, operator]
                                        for label in scenes]))  # fmt: skip
    pixels = images(images=[picture for picture, _ in pictures], return_tensors="pt")["pixel_values"]  # type: ignore[operator]
    targets = torch.tensor([target for _, target in pictures])
    eye = [*model.vision_model.parameters(), *model.visual_projection.parameters()]  # type: ignore[attr-defined]
    optimizer = torch.optim.AdamW(eye, lr=1e-2)
    model.train()  # type: ignore[attr-defined]
    for _ in range(STEPS):
        embedded = _unit(_features(model.get_image_features(pixel_values=pixels)))  # type: ignore[attr-defined]
        loss = torch.nn.functional.cross_entropy(model.logit_scale.exp().detach() * embedded @ directions.T, targets)  # type: ignore[attr-defined]
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    model.eval()  # type: ignore[attr-defined]
