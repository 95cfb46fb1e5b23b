"""OCR on memes the project renders itself (bizstream.memes: known captions over charts and photos, in three caption
styles and two sizes): character error rate and images/s for each preprocessing step alone and in combination, and
Tesseract's page segmentation mode 3 (automatic) against 11 (sparse text), in one run; and
the tiny CLIP's images/s, to show the image code path's own overhead (a real CLIP ViT-B/32 costs far more).

    .venv/bin/python bench/ocr.py [--images 36]

Prints one JSON object. CER = edit distance / caption length, case and spacing ignored (memes shout in capitals).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bizstream.memes import Meme, render  # noqa: E402
from bizstream.settings import LimitSettings  # noqa: E402
from bizstream_plugins.clip import tiny  # noqa: E402
from bizstream_plugins.clip.analyzer import ClipAnalyzer  # noqa: E402
from bizstream_plugins.ocr.reader import STEPS, read  # noqa: E402

CAPTIONS = [
    "to the moon, we are all gonna make it", "it's over, we got rugged", "buy the dip", "sell everything now",
    "number go up", "this is fine", "wen lambo", "rekt again, ngmi", "bull run confirmed", "bloodbath, another rug pull",
    "staking rewards explained", "gm anons", "have fun staying poor", "few understand", "funds are safu",
    "the bottom is in", "one more leg down", "diamond hands",
]  # fmt: skip


# Each step alone, then in combination (STEPS, the OCR analyzer's default, is among them).
VARIANTS = [(), ("gray",), ("upscale",), ("binarize",), ("captions",), ("gray", "captions"), ("upscale", "captions"),
            ("binarize", "captions"), ("gray", "upscale", "binarize"), STEPS]


def memes(n: int) -> list[Meme]:
    combos = itertools.cycle(itertools.product(("red_chart", "green_chart", "photo"), ("impact", "bar", "inverted"), ((480, 360), (240, 180))))
    return [Meme(CAPTIONS[i % len(CAPTIONS)], scene, style, size, font=i % 2, seed=i)  # type: ignore[arg-type]
            for i, (scene, style, size) in zip(range(n), combos, strict=False)]  # fmt: skip


def normal(text: str) -> str:
    return " ".join(text.lower().split())


def distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=36)
    args = parser.parse_args()
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # as the OCR analyzer runs it
    cases = memes(args.images)
    images = [render(m) for m in cases]
    ocr: dict[str, dict[str, float]] = {}
    configurations = [(steps, 3) for steps in VARIANTS] + [(STEPS, 11)]
    for steps, psm in configurations:
        errors = chars = 0
        per_size: dict[str, list[int]] = {}
        started = time.perf_counter()
        for meme, image in zip(cases, images, strict=True):
            got, want = normal(read(image, 60.0, steps, psm=psm).text), normal(meme.caption)
            error = min(distance(got, want), len(want))
            errors += error
            chars += len(want)
            size = per_size.setdefault(f"{meme.size[0]}x{meme.size[1]}", [0, 0])
            size[0] += error
            size[1] += len(want)
        seconds = time.perf_counter() - started
        ocr[f"{'+'.join(steps) or 'none'} psm{psm}"] = {
            "cer": round(errors / chars, 4),
            **{f"cer_{name}": round(e / c, 4) for name, (e, c) in per_size.items()},
            "images_per_s": round(len(images) / seconds, 2),
        }
    with tempfile.TemporaryDirectory() as folder:
        clip = ClipAnalyzer(LimitSettings(), model=str(tiny.build(Path(folder) / "clip")))
        clip.load()
        clip.probabilities(images[:2])  # warm-up
        started = time.perf_counter()
        for i in range(0, len(images), clip.batch_size):
            clip.probabilities(images[i : i + clip.batch_size])
        clip_rate = len(images) / (time.perf_counter() - started)
    print(orjson.dumps({
        "benchmark": "ocr",
        "images": len(images),
        "ocr_by_preprocessing": ocr,
        "tiny_clip_images_per_s": round(clip_rate, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }, option=orjson.OPT_INDENT_2).decode())  # fmt: skip


if __name__ == "__main__":
    main()
