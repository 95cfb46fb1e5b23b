from __future__ import annotations

from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from bizstream.errors import ConfigError
from bizstream.records import Post, Sentiment
from bizstream.testing import check_analyzer
from bizstream_plugins.vader.analyzer import SLANG_LEXICON, WINDOW_WORDS, VaderAnalyzer, read_lexicon


@pytest.fixture(scope="module")
def vader() -> VaderAnalyzer:
    analyzer = VaderAnalyzer()
    analyzer.load()
    return analyzer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("this coin is going to moon", Sentiment.BULLISH),
        ("got rekt again, ngmi", Sentiment.BEARISH),
        ("devs rugged us, bagholders everywhere", Sentiment.BEARISH),
        ("wagmi, $ETH pumping", Sentiment.BULLISH),
        ("ngmi with these jeets", Sentiment.BEARISH),
    ],
)
def test_the_slang_lexicon_decides(vader: VaderAnalyzer, text: str, expected: Sentiment) -> None:
    plain = SentimentIntensityAnalyzer().polarity_scores(text)["compound"]
    prediction = vader.predict(text)
    assert prediction.label is expected
    # Plain VADER does not see it this way: the lexicon is what makes the difference.
    plain_label = Sentiment.BULLISH if plain > 0.05 else Sentiment.BEARISH if plain < -0.05 else Sentiment.NEUTRAL
    assert plain_label is not expected


def test_prediction_is_well_formed_and_agrees_with_itself(vader: VaderAnalyzer) -> None:
    for text in ["moon", "rekt", "what exchange do you use", "great, another -40% day, love these bags", "🚀🚀"]:
        p = vader.predict(text)
        assert p.problem() is None
        assert max(p.probabilities, key=p.probabilities.__getitem__) == p.label.value
        assert p.confidence == p.probabilities[p.label.value]


def test_image_only_posts_are_not_vaders(vader: VaderAnalyzer) -> None:
    posts = [Post(id="a", text="moon", thread_id="a"), Post(id="b", text="", thread_id="b")]
    out = vader.analyze(posts)
    assert out[0] is not None and out[0].label is Sentiment.BULLISH
    assert out[1] is None


def test_lexicon_file_parses_and_rejects_bad_lines(tmp_path: Path) -> None:
    lexicon = read_lexicon(SLANG_LEXICON)
    assert lexicon["moon"] > 0 > lexicon["rekt"]
    assert {"moon", "pump", "rekt", "ngmi", "wagmi", "fud", "rug", "bagholder", "dump"} <= set(lexicon)
    bad = tmp_path / "bad.txt"
    bad.write_text("moon 2.0\nto the moon 3\n")
    with pytest.raises(ConfigError, match=r"bad.txt:2: expected 'token valence'"):
        read_lexicon(bad)
    bad.write_text("moon 9\n")
    with pytest.raises(ConfigError, match=r"valence must be in \[-4, \+4\]"):
        read_lexicon(bad)


def test_extra_lexicon_overrides(tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("moon -3.0  # in this community the moon is bad news\n")
    analyzer = VaderAnalyzer(extra_lexicon=str(extra))
    analyzer.load()
    assert analyzer.predict("this coin is going to moon").label is Sentiment.BEARISH


@pytest.mark.parametrize("compound_text", ["moon", "rekt", "ok", "what is this", "not bad", "great, another -40% day"])
def test_label_follows_vaders_neutral_band_and_compound_is_kept(vader: VaderAnalyzer, compound_text: str) -> None:
    p = vader.predict(compound_text)
    compound = float(p.details["compound"]) if p.details else float("nan")
    band = vader.neutral_band
    expected = Sentiment.BULLISH if compound > band else Sentiment.BEARISH if compound < -band else Sentiment.NEUTRAL
    assert p.label is expected
    assert compound == SentimentIntensityAnalyzer().polarity_scores(compound_text)["compound"] or compound_text in ("moon", "rekt")


def test_vader_passes_the_analyzer_checks() -> None:
    check_analyzer(VaderAnalyzer())


def test_long_posts_are_scored_in_bounded_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    vader = VaderAnalyzer()
    vader.load()
    seen: list[int] = []
    original = vader._sia.polarity_scores

    def counting(text: str) -> dict[str, float]:
        seen.append(len(text.split()))
        return dict(original(text))

    monkeypatch.setattr(vader._sia, "polarity_scores", counting)
    hostile = " ".join(["not", "great", "moon", "never", "rekt"] * 400)  # 2,000 lexicon-dense words
    prediction = vader.predict(hostile)
    assert max(seen) <= WINDOW_WORDS and sum(seen) == 2000  # all of it read, never more than a window at once
    assert prediction.problem() is None and -1 <= prediction.details["compound"] <= 1  # type: ignore[index]
    seen.clear()
    assert vader.predict("this coin is going to the moon").label.value == "bullish" and seen == [7]


def test_the_words_that_drove_it_travel_in_the_details(vader: VaderAnalyzer) -> None:
    (prediction,) = vader.analyze([Post(id="1", thread_id="1", text="$BTC to the moon!!! ngmi if you sold, rekt. Nice.")])
    assert prediction is not None and prediction.details is not None
    words = str(prediction.details["words"]).split(", ")
    assert {w.split()[0] for w in words} == {"moon", "ngmi", "rekt", "nice"}  # slang and VADER's own, punctuation off
    valences = [abs(float(w.split()[1])) for w in words]
    assert valences == sorted(valences, reverse=True)  # strongest first
    (plain,) = vader.analyze([Post(id="2", thread_id="2", text="the price is 800000 today")])
    assert plain is not None and "words" not in (plain.details or {})
