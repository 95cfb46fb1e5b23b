"""QLoRA fine-tuning of LLaVA-1.5 on memes: LoRA adapters on the language model over the 4-bit (NF4) base.

    python -m bizstream_plugins.llava.training --model /models/llava-1.5-7b-hf --data memes.jsonl --out adapters/meme-v1

The dataset is JSON lines, one meme per line; image paths are relative to the file's folder:

    {"image": "img/0001.png", "text": "wen lambo", "label": "bullish", "ocr": "HODL", "sarcastic": false}

``image``, ``text`` (may be empty) and ``label`` (bearish / neutral / bullish) are required; ``ocr`` (the text in the
image) and ``sarcastic`` (true / false) are optional and, when given, taught too. Each example is the analyzer's own
prompt (bizstream_plugins.llava.model.prompt_for) followed by the JSON answer it should give; the loss counts only the answer's
tokens. Images go through bizstream.images (byte and pixel limits). The base stays frozen (4-bit on CUDA; full
precision with --no-4bit, for CPU runs on small models); only the adapters train and are saved (safetensors).
Serve them with ``[plugins.options.llava] adapter = "<out>"``.

The seed estimates 2-4 hours on a 24 GB card for a few thousand memes (batch 1 with gradient accumulation 8).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bizstream.errors import InvalidRecord
from bizstream.images import decode
from bizstream.records import Sentiment
from bizstream.settings import LimitSettings
from bizstream_plugins.llava.model import prompt_for

log = logging.getLogger(__name__)
# The language model's projections; the vision tower (which has q_proj/k_proj/v_proj too) stays as it is.
TARGET_MODULES = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass(frozen=True)
class Meme:
    """One training example."""

    image: Path
    text: str
    label: Sentiment
    ocr: str = ""
    sarcastic: bool = False

    def answer(self) -> str:
        """The exact JSON the model should produce."""
        return orjson.dumps({"sentiment": self.label.value, "ocr": self.ocr, "sarcastic": self.sarcastic}).decode()


def read_memes(path: Path) -> list[Meme]:
    """Parse the dataset; a bad line raises InvalidRecord naming FILE:LINE and what is wrong."""
    memes = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidRecord(f"{where}: not JSON: {exc}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("image"), str) or not isinstance(obj.get("text", ""), str):
            raise InvalidRecord(f"{where}: needs 'image' (a path) and 'text' (a string)")
        try:
            label = Sentiment(str(obj.get("label", "")).lower())
        except ValueError:
            raise InvalidRecord(f"{where}: 'label' must be bearish, neutral or bullish, got {obj.get('label')!r}") from None
        if not isinstance(obj.get("ocr", ""), str) or not isinstance(obj.get("sarcastic", False), bool):
            raise InvalidRecord(f"{where}: 'ocr' must be a string and 'sarcastic' true or false")
        image = (path.parent / obj["image"]).resolve()
        if not image.is_relative_to(path.parent.resolve()):
            raise InvalidRecord(f"{where}: image {obj['image']!r} is outside the dataset's folder")
        memes.append(Meme(image, obj.get("text", ""), label, obj.get("ocr", ""), obj.get("sarcastic", False)))
    return memes


def batch_for(processor: Any, memes: Sequence[Meme], limits: LimitSettings) -> dict[str, Any]:
    """Model inputs for prompt + answer, with labels = -100 everywhere but the answer's tokens (and the EOS)."""
    tokenizer = processor.tokenizer
    images = [decode(m.image.read_bytes(), limits) for m in memes]
    prompts = [prompt_for(m.text) for m in memes]
    full = [f"{p} {m.answer()}{tokenizer.eos_token}" for p, m in zip(prompts, memes, strict=True)]
    tokenizer.padding_side = "right"
    inputs = processor(images=images, text=full, return_tensors="pt", padding=True)
    prompt_lengths = [len(processor(images=[img], text=[p], return_tensors="pt")["input_ids"][0]) for img, p in zip(images, prompts, strict=True)]
    labels = inputs["input_ids"].clone()
    for row, n in enumerate(prompt_lengths):
        labels[row, :n] = -100
    labels[inputs["attention_mask"] == 0] = -100
    inputs["labels"] = labels
    return dict(inputs)


def train(
    model_ref: str, memes: Sequence[Meme], out_dir: Path, *, quantize_4bit: bool = True, r: int = 16, alpha: int = 32,
    epochs: int = 1, lr: float = 2e-4, batch_size: int = 1, grad_accum: int = 8, seed: int = 42,
    limits: LimitSettings | None = None,
) -> list[float]:  # fmt: skip
    """Train adapters; save them to out_dir; return the loss of every optimizer step."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from bizstream_plugins.llava.model import load_llava

    limits = limits or LimitSettings()
    torch.manual_seed(seed)
    device = "cuda" if quantize_4bit else ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load_llava(model_ref, device, quantize_4bit, setting="--model")
    if quantize_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)  # type: ignore[no-untyped-call]
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.05, target_modules=TARGET_MODULES,
                                             task_type="CAUSAL_LM"))  # fmt: skip
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    order = list(range(len(memes)))
    rnd = random.Random(seed)
    losses: list[float] = []
    model.train()
    step_loss = 0.0
    micro = 0
    for _ in range(epochs):
        rnd.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = batch_for(processor, [memes[i] for i in order[start : start + batch_size]], limits)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            if "pixel_values" in batch:
                batch["pixel_values"] = batch["pixel_values"].to(model.dtype if not quantize_4bit else torch.float16)
            loss = model(**batch).loss / grad_accum
            loss.backward()
            step_loss += float(loss.detach())
            micro += 1
            if micro % grad_accum == 0:
                optimizer.step()
                optimizer.zero_grad()
                losses.append(step_loss)
                step_loss = 0.0
    if micro % grad_accum:
        optimizer.step()
        optimizer.zero_grad()
        losses.append(step_loss * grad_accum / (micro % grad_accum))
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    return losses


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="LLaVA-1.5 folder (or a hub id in the local cache)")
    parser.add_argument("--data", type=Path, required=True, help="memes as JSON lines (format above)")
    parser.add_argument("--out", type=Path, required=True, help="where the adapters are saved")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--r", type=int, default=16)
    parser.add_argument("--alpha", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=8)
    parser.add_argument("--no-4bit", action="store_true", help="train over a full-precision base (CPU, small models)")
    args = parser.parse_args(argv)
    import torch

    if not args.no_4bit and not torch.cuda.is_available():
        print("QLoRA needs CUDA (bitsandbytes 4-bit); use --no-4bit to train over a full-precision base", file=sys.stderr)
        return 2
    memes = read_memes(args.data)
    losses = train(args.model, memes, args.out, quantize_4bit=not args.no_4bit, r=args.r, alpha=args.alpha,
                   epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, grad_accum=args.grad_accum)  # fmt: skip
    print(orjson.dumps({"memes": len(memes), "steps": len(losses), "first_loss": losses[0] if losses else None,
                        "last_loss": losses[-1] if losses else None, "adapter": str(args.out)}).decode())  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
