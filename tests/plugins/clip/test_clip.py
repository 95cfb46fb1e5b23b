"""The CLIP zero-shot analyzer (issue 16), on a tiny CLIP built from a config and saved to a folder, so the real
loading and scoring code runs: unavailable without weights, probabilities that sum to 1, prompts from settings."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bizstream.errors import AnalyzerUnavailable, ConfigError
from bizstream.memes import Meme
from bizstream.records import Image, Post
from bizstream.settings import LimitSettings, Settings
from bizstream_plugins.clip import register_analyzers
from bizstream_plugins.clip import tiny as tiny_clip
from bizstream_plugins.clip.analyzer import PROMPTS, ClipAnalyzer


@pytest.fixture(scope="session")
def taught(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CLIP after a few seconds on red and green charts (it reads a crash as bearish)."""
    return tiny_clip.build(tmp_path_factory.mktemp("clip") / "taught", teach=True)


def image_post(i: int, meme: Meme | None, text: str = "") -> Post:
    image = None
    if meme is not None:
        data, mime = meme.encoded()
        image = Image(data=base64.b64encode(data).decode(), mime=mime)
    return Post(id=f"p{i}", text=text or ("gm" if image is None else ""), thread_id="t", image=image)


def test_zero_shot_from_a_folder(taught: Path) -> None:
    clip = ClipAnalyzer(LimitSettings(), model=str(taught))
    clip.load()
    assert clip.version == f"clip:{taught}"
    posts = [image_post(0, Meme("to the moon", "red_chart", seed=50)), image_post(1, None),
             image_post(2, Meme("wagmi", "green_chart", "bar", seed=51)), image_post(3, Meme("gm", "photo", "inverted", seed=52))]  # fmt: skip
    out = clip.analyze(posts)
    assert out[1] is None  # no image: not CLIP's to judge
    for prediction in (out[0], out[2], out[3]):
        assert prediction is not None and prediction.problem() is None
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert [p.label.value for p in (out[0], out[2], out[3])] == ["bearish", "bullish", "neutral"]  # type: ignore[union-attr]


def test_prompts_come_from_settings(taught: Path) -> None:
    flipped = {"bearish": PROMPTS["bullish"], "neutral": PROMPTS["neutral"], "bullish": PROMPTS["bearish"]}
    settings = Settings().replace(plugins={"options": {"clip": {"model": str(taught), "prompts": flipped}}})
    (clip,) = register_analyzers(settings)
    clip.load()
    (prediction,) = clip.analyze([image_post(0, Meme("", "red_chart", seed=53))])
    assert prediction is not None and prediction.label.value == "bullish"  # the red chart is nearest the bearish prompts, now named bullish
    with pytest.raises(ConfigError, match="prompts"):
        ClipAnalyzer(LimitSettings(), prompts={"bearish": ["a crash"], "bullish": ["a rally"]})
    with pytest.raises(ConfigError, match="prompts"):
        ClipAnalyzer(LimitSettings(), prompts={"bearish": ["a crash"], "neutral": [], "bullish": ["a rally"]})


def test_unavailable_without_weights_says_which_setting(tmp_path: Path) -> None:
    with pytest.raises(AnalyzerUnavailable, match=r"\[plugins.options.clip\] model"):
        ClipAnalyzer(LimitSettings(), model=str(tmp_path / "no-such-clip")).load()
    with pytest.raises(AnalyzerUnavailable, match="nothing is downloaded"):
        ClipAnalyzer(LimitSettings(), model="someone/not-in-the-cache-clip").load()


def test_a_refused_image_costs_only_its_post(taught: Path) -> None:
    clip = ClipAnalyzer(LimitSettings(max_image_pixels=100_000), model=str(taught))
    clip.load()
    out = clip.analyze([image_post(0, Meme("x", "red_chart", size=(480, 360))), image_post(1, Meme("x", "red_chart", size=(240, 180)))])
    assert out[0] is None and out[1] is not None  # 172,800 pixels over the limit; 43,200 within
