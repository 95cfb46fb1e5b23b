from __future__ import annotations

import pytest

from bizstream.records import Sentiment
from bizstream_plugins.sarcasm.rules import ModalityWeights, Signals, fuse, sarcasm_probability


def test_incongruity_between_text_and_image_is_sarcasm_and_inverts_the_text() -> None:
    # "wow great investment" (text +0.8) on a chart crashing to zero (image -0.9): |0.8 - (-0.9)| = 1.7 > 0.7
    fused = fuse(Signals(text=0.8, image=-0.9))
    assert fused.sarcasm_probability == pytest.approx(0.8)
    assert fused.inverted
    assert fused.score == pytest.approx((0.5 * -0.8 + 0.3 * -0.9) / 0.8)
    assert fused.label is Sentiment.BEARISH


def test_congruent_text_and_image_are_not_sarcasm() -> None:
    fused = fuse(Signals(text=0.6, image=0.4))
    assert fused.sarcasm_probability == 0.0 and not fused.inverted
    assert fused.score == pytest.approx((0.5 * 0.6 + 0.3 * 0.4) / 0.8)
    assert fused.label is Sentiment.BULLISH


def test_weights_cover_all_four_modalities() -> None:
    fused = fuse(Signals(text=1.0, image=0.5, context=-1.0, ocr=0.0))
    assert fused.used == pytest.approx({"text": 0.5, "image": 0.3, "context": 0.1, "ocr": 0.1})
    assert fused.score == pytest.approx(0.5 * 1.0 + 0.3 * 0.5 + 0.1 * -1.0 + 0.1 * 0.0)


def test_missing_modalities_text_only_and_image_only() -> None:
    text_only = fuse(Signals(text=-0.6))
    assert text_only.score == pytest.approx(-0.6) and text_only.used == {"text": 1.0}
    image_only = fuse(Signals(image=0.7, ocr=0.5))
    assert image_only.score == pytest.approx((0.3 * 0.7 + 0.1 * 0.5) / 0.4)
    assert not image_only.inverted
    with pytest.raises(ValueError, match="nothing to fuse"):
        fuse(Signals())


def test_text_sarcasm_signal_inverts_only_when_confident() -> None:
    assert fuse(Signals(text=0.9, text_sarcasm=0.9)).label is Sentiment.BEARISH
    assert fuse(Signals(text=0.9, text_sarcasm=0.5)).label is Sentiment.BULLISH
    # Several weak signals add up (noisy OR): 1 - 0.5 * 0.5 = 0.75 >= 0.7
    assert sarcasm_probability(Signals(image_sarcasm=0.5, text_sarcasm=0.5), ModalityWeights()) == pytest.approx(0.75)


def test_bad_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="weight image must be >= 0"):
        ModalityWeights(image=-0.1)


def test_a_caption_that_says_the_opposite_of_the_picture_is_sarcasm_and_both_texts_invert() -> None:
    # An image-only post: "to the moon" written (OCR +0.9) over a chart crashing to zero (CLIP -0.9).
    fused = fuse(Signals(image=-0.9, ocr=0.9))
    assert fused.sarcasm_probability == pytest.approx(0.8) and fused.inverted
    assert fused.score == pytest.approx((0.3 * -0.9 + 0.1 * -0.9) / 0.4)
    # With text that agrees with the caption, both are what the post says: both are inverted.
    both = fuse(Signals(text=0.5, image=-0.9, ocr=0.9))
    assert both.inverted and both.score == pytest.approx((0.5 * -0.5 + 0.3 * -0.9 + 0.1 * -0.9) / 0.9)
    assert fuse(Signals(image=-0.9, ocr=-0.6)).sarcasm_probability == 0.0  # "it's over" on a crash: meant


def test_sarcasm_turns_praise_into_blame_and_keeps_blame() -> None:
    # "love being stuck in traffic" (praise) meant as blame; "having the worst week" stays blame: sarcasm on its own is
    # nearly always praise meant as blame (bench/inversion.py), so a bearish text is not turned bullish.
    assert fuse(Signals(text=(0.1, 0.2, 0.7), text_sarcasm=0.9)).probabilities == pytest.approx({"bearish": 0.8, "neutral": 0.2, "bullish": 0.0})
    assert fuse(Signals(text=-0.8, text_sarcasm=0.9)).label is Sentiment.BEARISH


def test_blame_over_a_rising_chart_turns_into_praise() -> None:
    # "it's over" written over a chart going up: the image says which way the words were meant.
    fused = fuse(Signals(image=0.9, ocr=-0.9))
    assert fused.inverted and fused.label is Sentiment.BULLISH
    assert fused.score == pytest.approx((0.3 * 0.9 + 0.1 * 0.9) / 0.4)
