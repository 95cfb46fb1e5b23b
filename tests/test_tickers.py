"""Ticker extraction (issue 14, item 1): cashtags, aliases, ambiguous words only in context, replies inherit."""

from __future__ import annotations

from pathlib import Path

import pytest

from bizstream.errors import ConfigError
from bizstream.settings import TickerSettings
from bizstream.tickers import MAX_TICKERS, Lexicon, TickerExtractor


@pytest.fixture(scope="module")
def extractor() -> TickerExtractor:
    return TickerExtractor(Lexicon.load(TickerSettings().lexicon_path))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$BTC and $tsla, then $Sol", ["BTC", "TSLA", "SOL"]),  # cashtags, any case
        ("bought at $100, sold at $5k", []),  # prices are not tickers
        ("bitcoin and ether, then xrp", ["BTC", "ETH", "XRP"]),  # names and aliases
        ("link?", []),  # ambiguous, no crypto context
        ("link and eth pumping", ["ETH", "LINK"]),  # another ticker is context
        ("near protocol staking", ["NEAR"]),  # a context word
        ("near the top", []),
        ("the sol of this man", []),
        ("sol bags packed", ["SOL"]),
        ("mybitcoinwallet", []),  # whole words only
    ],
)
def test_mentions(extractor: TickerExtractor, text: str, expected: list[str]) -> None:
    assert sorted(extractor.mentioned(text)) == sorted(expected)


def test_a_reply_inherits_what_it_replies_to_else_its_thread(extractor: TickerExtractor) -> None:
    assert extractor.for_post("op", "$DOGE 10x incoming", None, "op") == ["DOGE"]
    assert extractor.for_post("r1", ">>op\nthis", "op", "op") == ["DOGE"]
    assert extractor.for_post("r2", "$ETH is better", "op", "op") == ["ETH"]  # it names its own
    assert extractor.for_post("r3", "cope", "r2", "op") == ["ETH"]  # the post it replies to, first
    assert extractor.for_post("r4", "cope", "unknown", "op") == ["DOGE"]  # else the thread's first post
    assert extractor.for_post("lone", "cope", None, "lone") == []


def test_memory_is_bounded_and_spam_is_capped() -> None:
    small = TickerExtractor(Lexicon.load(TickerSettings().lexicon_path), remember=2)
    for i in range(5):
        small.for_post(f"p{i}", "$BTC")
    assert small.for_post("reply", "this", "p0", None) == []  # p0 was forgotten
    assert len(small.mentioned(" ".join(f"$T{i}" for i in range(200)))) == MAX_TICKERS


def test_a_bad_lexicon_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "tickers.toml"
    bad.write_text('[names]\nbtc = ["bitcoin"]\n')
    with pytest.raises(ConfigError, match="upper-case ticker"):
        Lexicon.load(bad)
    bad.write_text('[nmaes]\nBTC = ["bitcoin"]\n')
    with pytest.raises(ConfigError, match="unknown section"):
        Lexicon.load(bad)
