"""Memes the project renders itself, with known captions: the sample posts' images, the OCR benchmark
(bench/ocr.py) and the image tests. Nothing here is downloaded; fonts are Debian's DejaVu (fonts-dejavu-core, installed
by scripts/install.sh).

A meme is a scene (a red or green candlestick chart, or a photo-like background) with a caption in one of the styles
memes use: white capitals with a black outline over the picture ("impact"), black text on a white band above it
("bar"), or white text on a black band below it ("inverted").
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bizstream.errors import BizstreamError

Scene = Literal["red_chart", "green_chart", "photo"]
Style = Literal["impact", "bar", "inverted"]
FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSansCondensed-Bold.ttf")  # Impact-like: heavy sans, the condensed one narrower


@dataclass(frozen=True)
class Meme:
    """A caption over a scene, drawn the same way for the same fields."""

    caption: str
    scene: Scene = "red_chart"
    style: Style = "impact"
    size: tuple[int, int] = (480, 360)
    font: int = 0  # index into FONTS
    seed: int = 0

    def encoded(self) -> tuple[bytes, str]:
        """The rendered meme as image bytes and their mime type: PNG for charts, JPEG for photos (as memes travel)."""
        out = io.BytesIO()
        if self.scene == "photo":
            render(self).save(out, format="JPEG", quality=85)
            return out.getvalue(), "image/jpeg"
        render(self).save(out, format="PNG", optimize=True)
        return out.getvalue(), "image/png"


def render(meme: Meme) -> Image.Image:
    """The meme as an RGB image."""
    width, height = meme.size
    band = height // 4 if meme.style in ("bar", "inverted") else 0
    picture = _scene(meme.scene, (width, height - band), meme.seed)
    canvas = Image.new("RGB", (width, height), "white" if meme.style == "bar" else "black")
    canvas.paste(picture, (0, band if meme.style == "bar" else 0))
    draw = ImageDraw.Draw(canvas)
    if meme.style == "impact":
        text = meme.caption.upper()
        box = (0, 0, width, height // 3)
        _caption(draw, text, box, meme.font, fill="white", stroke="black")
    elif meme.style == "bar":
        _caption(draw, meme.caption, (0, 0, width, band), meme.font, fill="black", stroke=None)
    else:
        _caption(draw, meme.caption, (0, height - band, width, height), meme.font, fill="white", stroke=None)
    return canvas


def _font(index: int, size: int) -> ImageFont.FreeTypeFont:
    name = FONTS[index % len(FONTS)]
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        raise BizstreamError(f"font {name} is not installed (Debian: fonts-dejavu-core; scripts/install.sh installs it)") from None


def _caption(draw: ImageDraw.ImageDraw, text: str, box: tuple[int, int, int, int], font_index: int, fill: str, stroke: str | None) -> None:
    """The largest font size at which the text, wrapped, fits the box; drawn centred."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    for size in range(max(12, height // 2), 11, -2):
        font = _font(font_index, size)
        lines = _wrap(draw, text, font, width - 12, bool(stroke))
        boxes = [draw.textbbox((0, 0), line, font=font, stroke_width=2 if stroke else 0) for line in lines]
        line_height = max(b[3] - b[1] for b in boxes) + size // 5
        if max(b[2] - b[0] for b in boxes) <= width - 12 and line_height * len(lines) <= height - 6:
            break
    y = top + (height - line_height * len(lines)) // 2
    for line, b in zip(lines, boxes, strict=True):
        x = left + (width - (b[2] - b[0])) // 2
        draw.text((x, y), line, font=font, fill=fill, stroke_width=2 if stroke else 0, stroke_fill=stroke)
        y += line_height


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int, stroke: bool) -> list[str]:
    """Words in lines no wider than ``width`` (a word wider than that gets a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(candidate, font=font) + (4 if stroke else 0) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines or [""]


def _scene(scene: Scene, size: tuple[int, int], seed: int) -> Image.Image:
    rnd = random.Random(seed)
    width, height = size
    if scene == "photo":  # smooth colour blobs, blurred: busy like a photo, no text-like edges
        image = Image.new("RGB", size, tuple(rnd.randrange(40, 200) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(14):
            x, y, r = rnd.randrange(width), rnd.randrange(height), rnd.randrange(20, max(21, width // 3))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rnd.randrange(256) for _ in range(3)))
        return image.filter(ImageFilter.GaussianBlur(8))
    image = Image.new("RGB", size, (18, 20, 26))
    draw = ImageDraw.Draw(image)
    for gy in range(0, height, 40):
        draw.line([(0, gy), (width, gy)], fill=(40, 44, 54))
    up = scene == "green_chart"
    candles, price = 24, height * (0.2 if up else 0.8)
    step = width / candles
    bars = []
    for i in range(candles):
        move = rnd.uniform(0.2, 1.0) * height / candles * (1 if up else -1) * 1.2 + rnd.uniform(-0.015, 0.015) * height
        opened, closed = price, price + move
        bars.append((int(i * step + step / 2), opened, closed))
        price = min(max(closed, height * 0.05), height * 0.95)
    # The area under the closes, shaded in the trend's colour, as exchange charts draw it.
    area = [(0, height)] + [(x, int(height - closed)) for x, _, closed in bars] + [(width, height)]
    draw.polygon(area, fill=(24, 88, 48) if up else (104, 28, 32))
    for x, opened, closed in bars:
        colour = (38, 196, 92) if closed > opened else (222, 52, 52)
        high, low = max(opened, closed) + rnd.uniform(2, 10), min(opened, closed) - rnd.uniform(2, 10)
        draw.line([(x, height - high), (x, height - low)], fill=colour, width=1)
        y0, y1 = sorted((height - opened, height - closed))
        draw.rectangle((x - int(step / 3), int(y0), x + int(step / 3), int(max(y1, y0 + 2))), fill=colour)
    return image
